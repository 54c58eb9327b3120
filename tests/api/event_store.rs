//! The event store's global position under concurrent writers: a follower that
//! reads "after my checkpoint" while appends are in flight sees every event
//! exactly once, in strictly increasing positions.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use domain::family::{Family, FamilyChanges, FamilyCommand};
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    a_follower_never_skips_an_event_under_concurrent_writers,
    events_carry_request_metadata
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
