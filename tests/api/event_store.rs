//! The event store's global position under concurrent writers: a follower that
//! reads "after my checkpoint" while appends are in flight sees every event
//! exactly once, in strictly increasing positions.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use domain::family::{Family, FamilyChanges, FamilyCommand, FamilyDetails};
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    a_follower_never_skips_an_event_under_concurrent_writers,
    events_carry_request_metadata,
    events_kept_in_memory_are_the_stored_bytes,
    a_subjects_first_key_is_stored_once_with_the_events_it_seals,
    a_batch_that_cannot_be_opened_moves_no_checkpoint
);

async fn a_follower_never_skips_an_event_under_concurrent_writers(b: Backend) {
    let app = spawn_app(b).await;
    let start = app.event_count().await;
    let fam_ids: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..8 {
            v.push(app.family(&format!("家{i}")).await);
        }
        v
    };
    let done = Arc::new(AtomicBool::new(false));
    let store = app.state.store.clone();
    let follower = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut checkpoint = start;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = store.read_after(checkpoint, 7).await.unwrap();
                for e in &batch {
                    assert!(e.position > checkpoint, "positions increase");
                    checkpoint = e.position;
                    seen.push((e.aggregate_id.clone(), e.sequence));
                }
                if batch.is_empty() && finished {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for (w, id) in fam_ids.iter().enumerate() {
        let (store, id) = (store.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                let changes = FamilyChanges {
                    family_name: Some(format!("w{w}-{i}")),
                    ..Default::default()
                };
                let ctx = carelog::state::RequestMeta::system("UpdateFamily");
                store
                    .execute::<Family>(&id, FamilyCommand::Update(changes), &ctx)
                    .await
                    .unwrap();
            }
        }));
    }
    futures::future::join_all(writers).await;
    done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    // 8 creates happened before the follower started; 8 × 25 updates during.
    let updates = seen.iter().filter(|(_, seq)| *seq > 1).count();
    assert_eq!(updates, 8 * 25, "every committed update was seen");
    assert_eq!(app.event_count().await, start + 8 + 200);
}

async fn events_carry_request_metadata(b: Backend) {
    let app = spawn_app(b).await;
    let before = app.event_count().await;
    app.send(
        reqwest::Method::POST,
        "/families",
        Some(&app.admin_token),
        Some(json!({"family_name": "冯家", "primary_address": "上海", "contact_phone": "13912345678"})),
        &[("User-Agent", "miniprogram/1.0"), ("X-Request-Id", "req-abc-123")],
    )
    .await
    .ok();
    let events = app.state.store.read_after(before, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    let m = &events[0].metadata;
    assert_eq!(m["actor_role"], "admin");
    assert!(!m["actor_id"].is_empty());
    assert_eq!(m["ip"], "127.0.0.1");
    assert_eq!(m["user_agent"], "miniprogram/1.0");
    assert_eq!(m["request_id"], "req-abc-123");
    assert_eq!(m["command"], "CreateFamily");
    assert!(chrono::DateTime::parse_from_rfc3339(&m["time"]).is_ok());
    assert_eq!(events[0].event_type, "FamilyCreated");
    // The phone never appears in logs, but it is in the event (erasure comes with crypto-shredding).
}

/// A household's details with a name and an address, the rest empty.
fn household(name: &str, address: &str) -> FamilyDetails {
    FamilyDetails {
        family_name: name.into(),
        primary_address: address.into(),
        secondary_address: None,
        contact_phone: domain::values::PhoneNumber::parse("13800138000").unwrap(),
        emergency_contact: None,
        emergency_phone: None,
        home_lat: None,
        home_lng: None,
    }
}

/// A new household's data key is made while its first event is sealed and
/// stored in the transaction that appends it. Eight commands racing to create
/// the same household each make a key, half of them without looking for the
/// household or its key first: exactly one command (and so one key) lands,
/// the others see the household exist, and what was stored opens with the
/// stored key. An erased subject gets no new key and no event, even when the
/// command assumes a new aggregate.
async fn a_subjects_first_key_is_stored_once_with_the_events_it_seals(b: Backend) {
    let app = spawn_app(b).await;
    let id = domain::ids::FamilyId::new().to_string();
    let before = app.event_count().await;
    let store = app.state.store.clone();
    let racers = (0..8).map(|i| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            let details = household(&format!("抢先{i}家"), "上海市徐汇区1号");
            // Half of them as the API creates (no lookup first), half loading first.
            let ctx = carelog::state::RequestMeta::system("CreateFamily");
            let ctx = if i % 2 == 0 { ctx.creating() } else { ctx };
            store
                .execute::<Family>(&id, FamilyCommand::Create(details), &ctx)
                .await
                .map(|_| i)
        })
    });
    let results: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let winners: Vec<usize> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(winners.len(), 1, "one creation wins: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, carelog::store::CommandError::Domain(_)),
            "the others see the household exist, not a store failure: {r:?}"
        );
    }
    let events = app.state.store.read_after(before, 100).await.unwrap();
    let ours: Vec<_> = events.iter().filter(|e| e.aggregate_id == id).collect();
    assert_eq!(ours.len(), 1, "one event");
    assert_eq!(
        ours[0].payload["FamilyCreated"]["family_name"],
        format!("抢先{}家", winners[0]),
        "the stored event opens with the stored key"
    );
    let sealed = app.state.store.read_raw_after(before, 100).await.unwrap();
    let raw = sealed.iter().find(|e| e.aggregate_id == id).unwrap();
    assert!(!raw.payload.contains("抢先"), "the name is sealed at rest");

    // Erased: no key is made again and nothing is appended.
    app.state.store.privacy().erase(&id).await.unwrap();
    let other = domain::ids::FamilyId::new().to_string();
    app.state.store.privacy().erase(&other).await.unwrap();
    let head = app.event_count().await;
    let details = household("新家", "上海市徐汇区2号");
    let r = app
        .state
        .store
        .execute::<Family>(
            &other,
            FamilyCommand::Create(details),
            &carelog::state::RequestMeta::system("CreateFamily").creating(),
        )
        .await;
    assert!(r.is_err(), "an erased subject's data is not sealed again");
    assert_eq!(app.event_count().await, head, "nothing appended");
    assert!(app.state.store.privacy().is_erased(&other).await.unwrap());
}

/// Read-your-writes across instances without session affinity: each write
/// goes to one instance and its read, at once, to the other, the first of
/// them before the second instance has committed anything. The instance that
/// did not write knows from the store's notifications that another writer
/// shares it, and its reads wait for the store's head; a read naming the
/// write's position (`X-Carelog-Position`) waits for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_is_read_at_once_on_the_other() {
    let app = spawn_app(Backend::Servers).await;
    let other = crate::helpers::second_instance(&app).await;
    let bases = [app.base.clone() + "/api/v1", other.base.clone()];
    for i in 0..30usize {
        let (write, read) = (&bases[i % 2], &bases[1 - i % 2]);
        let name = format!("两地{i}家");
        let r = app
            .client
            .post(format!("{write}/families"))
            .bearer_auth(&app.admin_token)
            .json(&json!({"family_name": name, "primary_address": "上海", "contact_phone": "13912345678"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let position = r.headers()["x-carelog-position"].to_str().unwrap().to_string();
        let v: serde_json::Value = r.json().await.unwrap();
        let id = v["data"]["id"].as_str().unwrap().to_string();
        let mut get = app
            .client
            .get(format!("{read}/families/{id}"))
            .bearer_auth(&app.admin_token);
        if i % 3 == 0 {
            get = get.header("X-Carelog-Position", position);
        }
        let r = get.send().await.unwrap();
        assert_eq!(r.status(), 200, "{name} written on {write}, read on {read}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["data"]["family_name"], name.as_str());
        let r = app
            .client
            .get(format!("{read}/families?limit=1"))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["data"]["total"], i + 1);
    }
}

/// Two instances on the same databases write in turn. Each follower reads its
/// own process's commits from memory (`carelog::tail`) and the other's from
/// the store: every household created through either instance is in the read
/// models as soon as its request answers, on both, and the audit chain seals
/// every event in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_see_every_commit_of_both_instances_in_order() {
    let app = spawn_app(Backend::Servers).await;
    let other = crate::helpers::second_instance(&app).await;
    let body = |i: usize| json!({"family_name": format!("轮流{i}家"), "primary_address": "上海", "contact_phone": "13912345678"});
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = if i % 3 == 2 {
            let r = app
                .client
                .post(format!("{}/families", other.base))
                .bearer_auth(&app.admin_token)
                .json(&body(i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let v: serde_json::Value = r.json().await.unwrap();
            v["data"]["id"].as_str().unwrap().to_string()
        } else {
            app.post("/families", &app.admin_token, body(i)).await.ok().id()
        };
        // Read your writes, through this instance, whoever wrote.
        let f = app.get(&format!("/families/{id}"), &app.admin_token).await.ok();
        assert_eq!(f.data()["family_name"], format!("轮流{i}家"));
        ids.push(id);
    }
    let list = app.get("/families?limit=50", &app.admin_token).await.ok();
    assert_eq!(list.data()["total"], 12);
    // The chain covers every event, in position order, whichever way each was read.
    let head = app.event_count().await;
    let v = app.sealed().await;
    assert_eq!(v.broken, None);
    assert_eq!((v.verified, v.unsealed), (head, 0));
}

/// The followers read this process's fresh commits from memory
/// (`carelog::tail`); the audit chain hashes them as read. What memory holds
/// is what the store holds, byte for byte: positions, `recorded_at` as the
/// store renders it, payloads (sealed) and metadata.
async fn events_kept_in_memory_are_the_stored_bytes(b: Backend) {
    let app = spawn_app(b).await;
    let before = app.event_count().await;
    for i in 0..5 {
        app.post(
            "/families",
            &app.admin_token,
            json!({"family_name": format!("内存{i}家"), "primary_address": "上海", "contact_phone": "13912345678"}),
        )
        .await
        .ok();
    }
    let kept = app.state.store.tail().after(before, 100).expect("the tail holds them");
    assert_eq!(kept.len(), 5);
    let filter = carelog::store::EventFilter {
        aggregate_type: Some("family".into()),
        ..Default::default()
    };
    // A filtered read always goes to the store.
    let stored = app.state.store.query_raw(&filter, before, 100, 0).await.unwrap();
    assert_eq!(format!("{kept:?}"), format!("{stored:?}"));
    assert!(!kept[0].payload.contains("内存"), "sealed in memory as at rest");
}

/// Sets a subject's stored (wrapped) key.
async fn set_wrapped_key(store: &carelog::store::EventStore, subject: &str, wrapped: &str) {
    let sql = "UPDATE subject_keys SET wrapped_key = $1 WHERE subject_id = $2";
    let done = match store.backend() {
        carelog::store::Backend::Postgres(pool) => sqlx::query(sql)
            .bind(wrapped)
            .bind(subject)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()),
        carelog::store::Backend::Sqlite(carelog::store::SqliteDb { write: pool, .. }) => sqlx::query(sql)
            .bind(wrapped)
            .bind(subject)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()),
    };
    assert_eq!(done.unwrap(), 1, "{subject} has a key");
}

/// The pipeline claims a batch's checkpoints while it opens the batch's
/// sealed fields (`ReadStore::claim_batch`). A batch it cannot open (here a
/// subject key that does not unwrap) must leave every checkpoint where it was:
/// a claim that moved them anyway would skip the batch for good. Once the key
/// reads again, the same batch is applied, whole and once.
async fn a_batch_that_cannot_be_opened_moves_no_checkpoint(b: Backend) {
    let app = spawn_app(b).await;
    let families: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(app.family(&format!("开不了{i}家")).await);
        }
        v
    };
    let store = &app.state.store;
    let head = store.head().await.unwrap();
    // A second read store on the same history, which no server follows.
    let url = match b {
        Backend::Servers => crate::helpers::fresh_databases().await.1,
        Backend::Embedded => format!("sqlite://{}?mode=rwc", app._dir.path().join("behind.db").display()),
    };
    let behind = projections::ReadStore::connect(&url).await.unwrap();
    let projectors = projections::all_projectors();
    behind.init_checkpoints(&projectors).await.unwrap();
    let wrapped: String = {
        let sql = "SELECT wrapped_key FROM subject_keys WHERE subject_id = $1";
        match store.backend() {
            carelog::store::Backend::Postgres(pool) => sqlx::query_scalar(sql).bind(&families[1]).fetch_one(pool).await,
            carelog::store::Backend::Sqlite(carelog::store::SqliteDb { read: pool, .. }) => {
                sqlx::query_scalar(sql).bind(&families[1]).fetch_one(pool).await
            }
        }
        .unwrap()
    };
    // Valid base64 of a nonce and a ciphertext the master key did not make.
    set_wrapped_key(
        store,
        &families[1],
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;

    let progress = |_: i64| async {};
    let failed = carelog::runner::catch_up(store, &behind, &projectors, 10_000, &progress).await;
    assert!(failed.is_err(), "the batch cannot be opened");
    assert_eq!(
        behind.checkpoints(&projectors).await.unwrap(),
        vec![0; projectors.len()],
        "no checkpoint moved past a batch that was not applied"
    );
    let listed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM families")
        .fetch_one(behind.pool())
        .await
        .unwrap();
    assert_eq!(listed, 0, "nothing of the batch was written");

    set_wrapped_key(store, &families[1], &wrapped).await;
    carelog::runner::catch_up(store, &behind, &projectors, 10_000, &progress)
        .await
        .unwrap();
    assert_eq!(
        behind.checkpoints(&projectors).await.unwrap(),
        vec![head; projectors.len()]
    );
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM families WHERE family_name LIKE ?")
        .bind("开不了%")
        .fetch_one(behind.pool())
        .await
        .unwrap();
    assert_eq!(applied, families.len() as i64, "every household of the batch, once");
}
