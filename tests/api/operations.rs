//! Health, API docs, the command line, and the SIGKILL fault test against the
//! real `carelog` binary.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, test_vars, Backend};

dual!(
    health_and_docs_are_served,
    acknowledged_commands_survive_sigkill_exactly_once,
    the_relay_leaves_no_gap_when_the_server_is_killed_while_publishing,
);

async fn health_and_docs_are_served(b: Backend) {
    let app = spawn_app(b).await;
    for path in ["/health", "/api/v1/health"] {
        let r: Value = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["code"], 200);
        assert_eq!(r["data"]["database"], "up");
        assert_eq!(r["data"]["read_store"], "up");
        assert_eq!(r["data"]["broker"], "disabled");
    }
    let doc: Value = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/families"].is_object());
    assert!(doc["paths"]["/api/v1/auth/login"].is_object());
    let ui = app.client.get(format!("{}/api/docs/", app.base)).send().await.unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    // The UI loads the document the server serves (serialized once at start-up).
    let init = app
        .client
        .get(format!("{}/api/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"url\": \"/api/openapi.json\""), "{init}");
    let missing = app
        .client
        .get(format!("{}/api/v1/nothing-here", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

fn carelog(vars: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carelog"));
    c.args(args)
        .envs(vars)
        .env_remove("CARELOG_CONFIG")
        .stdin(Stdio::null());
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process; killed when dropped, so a failing test leaves none behind.
pub(crate) struct Server(Child);

impl Server {
    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A data dir, fresh databases, a free port and an admin, for a `carelog serve` subprocess.
pub(crate) async fn subprocess_setup(
    b: Backend,
    extra: &[(&str, String)],
) -> (tempfile::TempDir, HashMap<String, String>, u16) {
    crate::helpers::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut vars = test_vars(b, dir.path()).await;
    let port = free_port();
    vars.insert("CARELOG_BIND".into(), format!("127.0.0.1:{port}"));
    for (k, v) in extra {
        vars.insert(k.to_string(), v.clone());
    }
    let out = carelog(
        &vars,
        &[
            "create-admin",
            "--username",
            "admin",
            "--password",
            "admin-pass-1",
            "--name",
            "管理员",
            "--phone",
            "13800000000",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir, vars, port)
}

pub(crate) async fn start(vars: &HashMap<String, String>, port: u16) -> Server {
    let mut child = Server(
        carelog(vars, &["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("carelog starts"),
    );
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill();
    panic!("server did not come up");
}

async fn acknowledged_commands_survive_sigkill_exactly_once(b: Backend) {
    let (_dir, vars, port) = subprocess_setup(b, &[]).await;

    let mut server = start(&vars, port).await;
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;

    // Send commands from several clients; kill the server in the middle.
    let mut senders = Vec::new();
    for w in 0..4 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let r = client
                    .post(format!("{base}/families"))
                    .bearer_auth(&token)
                    .json(&json!({"family_name": format!("家{w}-{i}"), "primary_address": "上海", "contact_phone": "13912345678"}))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = v["data"]["id"].as_str() {
                            acked.push(id.to_string());
                        }
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let acked: Vec<String> = futures::future::join_all(senders)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(!acked.is_empty(), "some commands were acknowledged before the kill");

    let mut server = start(&vars, port).await;
    let token = login(&client, &base).await;
    let mut listed = Vec::new();
    let mut page = 1;
    loop {
        let r: Value = client
            .get(format!("{base}/families?limit=100&page={page}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = r["data"]["families"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        listed.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_string()));
        page += 1;
    }
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no family twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged family {id} is in the read model");
    }

    // `carelog rebuild` refuses an unknown projection and, with the server stopped, rebuilds.
    server.kill();
    let out = carelog(&vars, &["rebuild", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let out = carelog(&vars, &["rebuild"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt families"));
}

pub(crate) async fn login(client: &reqwest::Client, base: &str) -> String {
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "admin", "password": "admin-pass-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["data"]["access_token"]
        .as_str()
        .expect("admin logs in")
        .to_string()
}

/// SIGKILL while the relay publishes; after restart the topics hold every
/// position from 1 to the head (no gap), and any duplicate has the same id.
async fn the_relay_leaves_no_gap_when_the_server_is_killed_while_publishing(b: Backend) {
    let prefix = crate::kafka::prefix();
    let extra = [
        ("CARELOG_KAFKA_BROKERS", crate::kafka::brokers()),
        ("CARELOG_KAFKA_TOPIC_PREFIX", prefix.clone()),
    ];
    let (_dir, vars, port) = subprocess_setup(b, &extra).await;
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = reqwest::Client::new();

    let mut server = start(&vars, port).await;
    let token = login(&client, &base).await;
    let sender = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            for i in 0..400 {
                let r = client
                    .post(format!("{base}/families"))
                    .bearer_auth(&token)
                    .json(&json!({"family_name": format!("家{i}"), "primary_address": "上海", "contact_phone": "13912345678"}))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                if r.is_err() {
                    break;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let _ = sender.await;

    let _server = start(&vars, port).await;
    let mut caught_up = false;
    for _ in 0..300 {
        let h: Value = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h["data"]["relay_lag"] == 0 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the relay catches up after the restart");
    let topics = vec![format!("{prefix}user"), format!("{prefix}family")];
    let got = crate::kafka::consume(&crate::kafka::brokers(), &topics, Duration::from_secs(60), |got| {
        let positions: HashSet<i64> = got.iter().filter_map(|v| v["position"].as_i64()).collect();
        let max = positions.iter().copied().max().unwrap_or(0);
        max > 3 && positions.len() as i64 == max
    })
    .await;
    let mut by_position: HashMap<i64, &Value> = HashMap::new();
    for v in &got {
        let pos = v["position"].as_i64().unwrap();
        if let Some(prev) = by_position.insert(pos, v) {
            assert_eq!(prev["id"], v["id"], "a duplicate carries the same id");
        }
    }
    let max = by_position.keys().copied().max().unwrap();
    assert!(max > 3, "events were published");
    for p in 1..=max {
        assert!(by_position.contains_key(&p), "position {p} is on Kafka");
    }
}

/// Pooled connections are not pinged each time they are handed out (a round
/// trip per statement), only after they sat idle (`projections::pool`): one
/// the server dropped meanwhile (a restart, `wait_timeout`, a proxy's idle
/// cut) is replaced before a statement meets it.
#[tokio::test]
async fn a_pooled_connection_dropped_while_idle_is_replaced() {
    use sqlx::Connection;
    let url = crate::helpers::mysql_url();
    let pool = projections::pool::networked::<sqlx::MySql>()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut own = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("KILL CONNECTION {id}"))
        .execute(&mut own)
        .await
        .unwrap();
    tokio::time::sleep(projections::pool::PING_AFTER_IDLE + Duration::from_millis(300)).await;
    let again: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&pool)
        .await
        .expect("the dropped connection was replaced");
    assert_ne!(again, id);
}
