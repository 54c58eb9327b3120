//! `carelog rebuild` produces read models identical to the live ones.

use domain::family::{Family, FamilyChanges, FamilyCommand};
use projections::store::RowExt;
use sqlx::Row;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    every_index_a_rebuild_builds_after_its_load_is_a_non_unique_index_of_the_projectors_tables,
    rebuild_reproduces_the_live_read_models,
    a_second_rebuild_of_the_same_read_store_is_refused_while_one_runs,
    rebuild_under_read_and_write_load_never_shows_an_empty_or_partial_read_model
);

/// `rounds` address changes of every family, straight through the store.
async fn move_families(store: &carelog::store::EventStore, families: &[String], rounds: usize) {
    for round in 0..rounds {
        for f in families {
            let changes = FamilyChanges {
                primary_address: Some(format!("地址{round}")),
                ..Default::default()
            };
            store
                .execute::<Family>(
                    f,
                    FamilyCommand::Update(changes),
                    &carelog::state::RequestMeta::system("UpdateFamily"),
                )
                .await
                .unwrap();
        }
    }
}

/// Creates families through the API until `stop`, each read back at once
/// (read-your-writes); returns their ids.
fn family_writer(
    app: &crate::helpers::TestApp,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    let (client, base, token, stop) = (
        app.client.clone(),
        app.base.clone(),
        app.admin_token.clone(),
        stop.clone(),
    );
    tokio::spawn(async move {
        let mut created = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            let body: serde_json::Value = client
                .post(format!("{base}/api/v1/families"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"family_name": format!("新家{}", created.len()),
                    "primary_address": "上海市新路1号", "contact_phone": "13912345678"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["code"], 201, "{body}");
            let id = body["data"]["id"].as_str().unwrap().to_string();
            let seen: serde_json::Value = client
                .get(format!("{base}/api/v1/families/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(seen["code"], 200, "{seen}");
            created.push(id);
        }
        created
    })
}

async fn dump(read: &projections::ReadStore) -> Vec<String> {
    let mut out = Vec::new();
    for (table, key) in [
        ("users", "id"),
        ("sessions", "id"),
        ("recorders", "user_id"),
        ("families", "id"),
        ("patients", "id"),
        ("family_totals", "id"),
        ("family_grams", "gram, created_at, family_id"),
        ("family_gram_counts", "gram"),
        ("recorder_families", "subscription_id"),
        ("service_packages", "id"),
        ("subscriptions", "id"),
        ("appointments", "id"),
        ("appointment_history", "appointment_id, seq"),
        ("health_records", "id"),
        ("health_record_files", "record_id, file_id"),
        ("health_record_amendments", "record_id, seq"),
        ("order_requests", "id"),
        ("medical_orders", "id"),
        ("notifications", "id"),
        ("hospitals", "id"),
        ("hospital_departments", "id"),
        ("hospital_doctors", "id"),
        ("hospital_slots", "id"),
        ("hospital_appointments", "id"),
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {key}"))
            .fetch_all(read.pool())
            .await
            .unwrap();
        for r in rows {
            let mut cols = Vec::new();
            for i in 0..r.len() {
                let v: String = r
                    .try_get::<Option<String>, _>(i)
                    .map(|o| o.unwrap_or_else(|| "NULL".into()))
                    .or_else(|_| r.try_get::<Option<i64>, _>(i).map(|o| format!("{o:?}")))
                    .or_else(|_| r.try_get::<Option<f64>, _>(i).map(|o| format!("{o:?}")))
                    .or_else(|_| r.try_get::<Option<Vec<u8>>, _>(i).map(|o| format!("{o:?}")))
                    .unwrap();
                cols.push(v);
            }
            out.push(format!("{table}: {}", cols.join("|")));
        }
    }
    out
}

/// Every index of the read store with its columns, by table and name.
async fn indexes(read: &projections::ReadStore) -> Vec<String> {
    use projections::store::RowExt;
    let sql = match read.dialect() {
        projections::Dialect::Sqlite => {
            "SELECT tbl_name AS t, name AS i, COALESCE(sql, '(key)') AS c FROM sqlite_schema
             WHERE type = 'index' ORDER BY tbl_name, name"
        }
        projections::Dialect::MySql => {
            "SELECT TABLE_NAME AS t, INDEX_NAME AS i,
                    CONCAT(NON_UNIQUE, ' ', SEQ_IN_INDEX, ' ', COLUMN_NAME, ' ', COALESCE(SUB_PART, 0), ' ',
                           COALESCE(COLLATION, '')) AS c
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
        }
    };
    let rows = sqlx::query(sql).fetch_all(read.pool()).await.unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{}.{} {}",
                r.text("t").unwrap(),
                r.text("i").unwrap(),
                r.text("c").unwrap()
            )
        })
        .collect()
}

/// A name in `Projector::deferred_indexes` that the schema does not have
/// (renamed, or a typo) would leave that index built row by row in every
/// rebuild, unnoticed; a unique one would be kept.
async fn every_index_a_rebuild_builds_after_its_load_is_a_non_unique_index_of_the_projectors_tables(b: Backend) {
    let app = spawn_app(b).await;
    let schema = indexes(app.state.read().await).await;
    let mut deferred = 0;
    for p in projections::all_projectors() {
        for index in p.deferred_indexes() {
            let found: Vec<&String> = schema
                .iter()
                .filter(|i| p.tables().iter().any(|t| i.starts_with(&format!("{t}.{index} "))))
                .collect();
            // InnoDB's secondary keys end with the primary key already.
            if found.is_empty() && b == Backend::Servers && *index == "families_created_id" {
                continue;
            }
            assert!(!found.is_empty(), "{}: no index {index} on its tables", p.name());
            for i in found {
                // SQLite: "t.i CREATE …"; MySQL: "t.i NON_UNIQUE …".
                let unique = i.contains("CREATE UNIQUE") || i.split(' ').nth(1) == Some("0");
                assert!(!unique, "{i} is unique");
            }
            deferred += 1;
        }
    }
    assert!(deferred >= 8, "{deferred}");
}

async fn rebuild_reproduces_the_live_read_models(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, _) = app.recorder(1).await;
    let package = app.package().await;
    let mut families = Vec::new();
    for i in 0..20 {
        let f = app.family(&format!("家{i}")).await;
        let p = app.patient(&f, &format!("患者{i}")).await;
        app.subscribe(&p, &package, &r1).await;
        families.push(f);
    }
    // Field work and a hospital booking, through the API.
    let (_, rtoken) = (r1.clone(), app.login("recorder1", "recorder-pass").await);
    app.post(
        "/users",
        &app.admin_token,
        serde_json::json!({"username": "doc", "phone": "13700000001", "password": "doctor-pass", "role": "doctor", "name": "医生",
               "doctor": {"license_number": "L-1", "specialty": "全科"}}),
    )
    .await
    .ok();
    let patient = app
        .get(&format!("/families/{}", families[0]), &app.admin_token)
        .await
        .ok()
        .data()["patients"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let next = (today + chrono::Duration::days(3)).to_string();
    app.post(
        "/appointments",
        &rtoken,
        serde_json::json!({"patient_id": patient, "scheduled_date": next, "scheduled_time": "09:00"}),
    )
    .await
    .ok();
    app.post(
        "/health-records",
        &rtoken,
        serde_json::json!({"patient_id": patient, "visit_date": today.to_string(), "visit_time": "08:00", "vital_signs": {"blood_pressure": "165/100"}}),
    )
    .await
    .ok();
    let hospital = app
        .post(
            "/hospitals",
            &app.admin_token,
            serde_json::json!({"name": "华山医院", "address": "上海"}),
        )
        .await
        .ok()
        .id();
    let dep = app
        .post(
            &format!("/hospitals/{hospital}/departments"),
            &app.admin_token,
            serde_json::json!({"name": "内科"}),
        )
        .await
        .ok()
        .id();
    app.post(
        &format!("/hospitals/{hospital}/slots"),
        &app.admin_token,
        serde_json::json!({"department_id": dep, "date": next, "time": "10:00", "capacity": 2}),
    )
    .await
    .ok();
    let booking = app
        .post(
            "/hospital-appointments",
            &rtoken,
            serde_json::json!({"patient_id": patient, "hospital_id": hospital, "department_id": dep, "appointment_date": next, "appointment_time": "10:00"}),
        )
        .await
        .ok();
    let bid = booking.data()["appointment_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/hospital-appointments/{bid}/confirm"),
        &app.admin_token,
        serde_json::json!({"appointment_number": "H-1"}),
    )
    .await
    .ok();

    // Later changes to the households of the first commands: a second
    // patient of an old household, with its subscription; a subscription
    // paused; a patient renamed, and one erased.
    let second = app.patient(&families[1], "第二位患者").await;
    let sub = app.subscribe(&second, &package, &r1).await;
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        serde_json::json!({"status": "paused"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/patients/{second}"),
        &app.admin_token,
        serde_json::json!({"name": "改名患者"}),
    )
    .await
    .ok();
    let third = app.patient(&families[2], "第三位患者").await;
    app.post(
        &format!("/patients/{third}/erase"),
        &app.admin_token,
        serde_json::json!({"reason": "家属书面申请"}),
    )
    .await
    .ok();

    // Thousands of events, written straight to the store.
    let store = &app.state.store;
    move_families(store, &families, 100).await;
    let head = store.head().await.unwrap();
    assert!(head > 2000, "{head} events");
    app.state.waiter.wait_for(head).await;
    let live = dump(app.state.read().await).await;
    assert!(live.len() > 60);
    // The households' patient counts, kept as patients are registered (an
    // erased patient stays one of the household's).
    for (f, n) in [(&families[0], 1), (&families[1], 2), (&families[2], 2)] {
        let count: i64 = sqlx::query_scalar("SELECT patient_count FROM families WHERE id = ?")
            .bind(f)
            .fetch_one(app.state.read().await.pool())
            .await
            .unwrap();
        assert_eq!(count, n, "{f}");
        // Its windows: one per subscription active by status.
        let windows = sqlx::query("SELECT subscription_windows FROM families WHERE id = ?")
            .bind(f)
            .fetch_one(app.state.read().await.pool())
            .await
            .unwrap()
            .opt_text("subscription_windows")
            .unwrap();
        let active: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM recorder_families WHERE family_id = ? AND status = 'active'")
                .bind(f)
                .fetch_one(app.state.read().await.pool())
                .await
                .unwrap();
        let windows = windows.unwrap_or_default();
        assert_eq!(windows.len() % projections::families::WINDOW, 0, "{windows}");
        assert_eq!(
            (windows.len() / projections::families::WINDOW) as i64,
            active,
            "{f}: {windows}"
        );
    }

    for p in projections::all_projectors() {
        app.state.read().await.reset(p.as_ref()).await.unwrap();
    }
    assert!(dump(app.state.read().await).await.is_empty());
    // The running server's runner replays into the emptied tables.
    app.state.waiter.wait_for(head).await;
    for p in projections::all_projectors() {
        while app.state.read().await.checkpoint(p.name()).await.unwrap() < head {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(dump(app.state.read().await).await, live);
    // Rebuilt beside them as `carelog rebuild` does: loaded in bulk (the
    // search grams written after the load, from the final rows; the list
    // indexes built after it), then switched in. The same tables again, with
    // the same indexes.
    let schema = indexes(app.state.read().await).await;
    assert!(
        schema.iter().any(|i| i.contains("recorder_families_list")),
        "{schema:?}"
    );
    carelog::runner::rebuild_beside(store, app.state.read().await, &projections::all_projectors())
        .await
        .unwrap();
    assert_eq!(dump(app.state.read().await).await, live);
    assert_eq!(indexes(app.state.read().await).await, schema);
}

async fn rebuild_under_read_and_write_load_never_shows_an_empty_or_partial_read_model(b: Backend) {
    let app = spawn_app(b).await;
    let mut families = Vec::new();
    for i in 0..30 {
        let f = app.family(&format!("家{i}")).await;
        app.patient(&f, &format!("患者{i}")).await;
        families.push(f);
    }
    let store = &app.state.store;
    // A longer history, so the replay takes a while.
    move_families(store, &families, 40).await;
    app.state.waiter.wait_for(store.head().await.unwrap()).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers: the family list as the admin sees it, all the time.
    let reader = {
        let (client, base, token, stop) = (
            app.client.clone(),
            app.base.clone(),
            app.admin_token.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let body: serde_json::Value = client
                    .get(format!("{base}/api/v1/families?limit=100"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(body["code"], 200, "{body}");
                let total = body["data"]["total"].as_i64().unwrap();
                let listed = body["data"]["families"].as_array().unwrap().len() as i64;
                seen.push((total, listed));
            }
            seen
        })
    };
    // A writer: new families keep arriving while the rebuild runs.
    let writer = family_writer(&app, &stop);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let done = carelog::runner::rebuild_beside(store, app.state.read().await, &projections::all_projectors())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let seen = reader.await.unwrap();
    let written = writer.await.unwrap().len();
    assert!(done.events > 1200, "{done:?}");
    assert!(written > 0 && seen.len() > 5, "{written} written, {} reads", seen.len());
    // Never empty, never partial: every read saw at least the 30 families
    // that existed before, and the totals only grew.
    for pair in seen.windows(2) {
        assert!(pair[1].0 >= pair[0].0, "the total went back: {seen:?}");
    }
    // (The total and the page are two statements: a family committed between
    // them may show in one only.)
    for (total, listed) in &seen {
        assert!(*total >= 30 && *listed >= 30, "{total} total, {listed} listed");
        assert!(
            (*listed - (*total).min(100)).abs() <= 3,
            "{total} total, {listed} listed"
        );
    }

    // The switched-in read models, kept up to date by the live pipeline, are
    // exactly what a quiet rebuild produces: nothing lost, nothing twice.
    app.state.waiter.wait_for(store.head().await.unwrap()).await;
    let live = dump(app.state.read().await).await;
    assert!(live.iter().filter(|r| r.starts_with("families:")).count() >= 30 + written);
    carelog::runner::rebuild_beside(store, app.state.read().await, &projections::all_projectors())
        .await
        .unwrap();
    assert_eq!(dump(app.state.read().await).await, live);
}

/// Two rebuilds of one read store would share its scratch database (or
/// file): while one holds its shadow, a second is refused with a message, and
/// once the first is done the next one runs.
async fn a_second_rebuild_of_the_same_read_store_is_refused_while_one_runs(b: Backend) {
    let app = spawn_app(b).await;
    app.family("家").await;
    let read = &app.state.read().await;
    let first = read.create_shadow().await.unwrap();
    let second = read.create_shadow().await;
    let refused = second.err().expect("a second shadow while the first exists");
    assert!(refused.to_string().contains("another rebuild"), "{refused}");
    let store = &app.state.store;
    let err = carelog::runner::rebuild_beside(store, read, &projections::all_projectors())
        .await
        .expect_err("a rebuild while another holds the shadow");
    assert!(format!("{err:#}").contains("another rebuild"), "{err:#}");
    first.discard().await.unwrap();
    let done = carelog::runner::rebuild_beside(store, read, &projections::all_projectors())
        .await
        .unwrap();
    assert!(done.events > 0, "{done:?}");
}

/// A read store left behind the history (no server followed it: a restored
/// backup, a store seeded with the server stopped) gets the rebuilt tables
/// put in its place as the up-to-date one does, by `RENAME TABLE`, not by
/// rewriting every row under the pipeline's lock: on MySQL that rewrite held
/// the live tables for minutes at 1,000,000 patients. The tables and their
/// checkpoints arrive together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_store_left_behind_gets_the_rebuilt_tables_renamed_in_on_mysql() {
    let app = spawn_app(Backend::Servers).await;
    let mut families = Vec::new();
    for i in 0..10 {
        let f = app.family(&format!("家{i}")).await;
        app.patient(&f, &format!("患者{i}")).await;
        families.push(f);
    }
    let store = &app.state.store;
    move_families(store, &families, 5).await;
    let head = store.head().await.unwrap();
    app.state.waiter.wait_for(head).await;
    let expected = dump(app.state.read().await).await;

    // A second read store on the same history, which no runner follows: its
    // checkpoints stay at 0.
    let (_, mysql) = crate::helpers::fresh_databases().await;
    let behind = projections::ReadStore::connect(&mysql).await.unwrap();
    let projectors = projections::all_projectors();
    behind.init_checkpoints(&projectors).await.unwrap();
    // A mark on a live table: a rewrite of its rows keeps it, a table renamed
    // in its place does not have it.
    sqlx::query("ALTER TABLE families COMMENT = 'the table before the rebuild'")
        .execute(behind.pool())
        .await
        .unwrap();

    let done = carelog::runner::rebuild_beside(store, &behind, &projectors)
        .await
        .unwrap();
    assert_eq!(done.position, head);
    assert_eq!(dump(&behind).await, expected);
    assert_eq!(
        behind.checkpoints(&projectors).await.unwrap(),
        vec![head; projectors.len()]
    );
    let comment: String = sqlx::query_scalar(
        "SELECT CAST(TABLE_COMMENT AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'families'",
    )
    .fetch_one(behind.pool())
    .await
    .unwrap();
    assert_eq!(comment, "", "the live families table was rewritten, not replaced");
}

/// The names in the embedded data dir `dir` that belong to the read store.
fn read_store_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("read."))
        .collect();
    names.sort();
    names
}

/// On SQLite a full rebuild puts its shadow file in place of the live one
/// (a link renamed over the configured path), whatever the size, instead of
/// copying every row into the live file under the pipeline's lock. Run from
/// another process (here: another `ReadStore` on the same file, as `carelog
/// rebuild` opens it), the server notices on its own: its readers and its
/// pipeline move to the new file, nothing written meanwhile is lost or
/// applied twice, what only the live file held (the reactors' positions)
/// comes along, and the old file is gone from the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rebuild_on_sqlite_switches_the_file_under_a_running_server() {
    let app = spawn_app(Backend::Embedded).await;
    let dir = app._dir.path().to_path_buf();
    let mut families = Vec::new();
    for i in 0..10 {
        let f = app.family(&format!("家{i}")).await;
        app.patient(&f, &format!("患者{i}")).await;
        families.push(f);
    }
    let store = &app.state.store;
    move_families(store, &families, 10).await;
    app.state.waiter.wait_for(store.head().await.unwrap()).await;
    app.state
        .read()
        .await
        .set_reactor_checkpoint("a-reactor", 42)
        .await
        .unwrap();
    assert_eq!(read_store_files(&dir), ["read.db", "read.db-shm", "read.db-wal"]);
    let schema = indexes(app.state.read().await).await;

    // Commands keep arriving while another process rebuilds.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = family_writer(&app, &stop);
    let url = format!("sqlite://{}?mode=rwc", dir.join("read.db").display());
    let other = projections::ReadStore::connect(&url).await.unwrap();
    let projectors = projections::all_projectors();
    assert!(other.switches_file(&projectors));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    carelog::runner::rebuild_beside(store, &other, &projectors)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let created = writer.await.unwrap();
    assert!(!created.is_empty());
    other.close().await;

    let files = read_store_files(&dir);
    let link = std::fs::read_link(dir.join("read.db")).expect("read.db is a link after the switch");
    let generation = link.to_string_lossy().into_owned();
    assert!(
        generation.starts_with("read.") && generation.ends_with(".db"),
        "{generation}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("read.db-") || f.contains("rebuild.db")),
        "the old file's log and the shadow are gone: {files:?}"
    );

    // The new file has every index the old one had (the list indexes built
    // after the load).
    assert_eq!(indexes(app.state.read().await).await, schema);

    // The server follows the new file: a family created now is listed, and
    // every family the history holds is there exactly once.
    let last = app.family("切换后").await;
    let body = app.get("/families?limit=100", &app.admin_token).await.ok();
    assert_eq!(body.data()["total"], 10 + created.len() + 1, "{}", body.body);
    assert_eq!(body.data()["families"][0]["id"], last.as_str());
    for id in &created {
        app.get(&format!("/families/{id}"), &app.admin_token).await.ok();
    }
    assert_eq!(
        app.state.read().await.reactor_checkpoint("a-reactor").await.unwrap(),
        42
    );

    // What the server's pipeline kept up to date is what a quiet rebuild
    // makes; the second switch, from link to link, removes the first file.
    app.state.waiter.wait_for(store.head().await.unwrap()).await;
    let live = dump(app.state.read().await).await;
    carelog::runner::rebuild_beside(store, app.state.read().await, &projectors)
        .await
        .unwrap();
    assert_eq!(dump(app.state.read().await).await, live);
    let files = read_store_files(&dir);
    assert!(!files.contains(&generation), "{files:?}");
    let newer = std::fs::read_link(dir.join("read.db")).unwrap();
    assert_ne!(newer, link);
    assert!(files.contains(&newer.to_string_lossy().into_owned()), "{files:?}");
    assert_eq!(
        app.state.read().await.reactor_checkpoint("a-reactor").await.unwrap(),
        42
    );
}
