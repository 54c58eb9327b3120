//! `carelog rebuild` produces read models identical to the live ones.

use domain::family::{Family, FamilyChanges, FamilyCommand};
use sqlx::Row;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(rebuild_reproduces_the_live_read_models);

async fn dump(read: &projections::ReadStore) -> Vec<String> {
    let mut out = Vec::new();
    for (table, key) in [
        ("users", "id"),
        ("sessions", "id"),
        ("recorders", "user_id"),
        ("families", "id"),
        ("patients", "id"),
        ("service_packages", "id"),
        ("subscriptions", "id"),
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
    // Thousands of events, written straight to the store.
    let store = &app.state.store;
    for round in 0..100 {
        for f in &families {
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
    let head = store.head().await.unwrap();
    assert!(head > 2000, "{head} events");
    app.state.waiter.wait_for(head).await;
    let live = dump(&app.state.read).await;
    assert!(live.len() > 60);

    for p in projections::all_projectors() {
        app.state.read.reset(p.as_ref()).await.unwrap();
    }
    assert!(dump(&app.state.read).await.is_empty());
    // The running server's runner replays into the emptied tables.
    app.state.waiter.wait_for(head).await;
    for p in projections::all_projectors() {
        while app.state.read.checkpoint(p.name()).await.unwrap() < head {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(dump(&app.state.read).await, live);
}
