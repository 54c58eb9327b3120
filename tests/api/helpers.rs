//! `spawn_app`: the real server on a random port, against a fresh database.
//! `Backend::Embedded` uses SQLite files in a temp dir; `Backend::Servers` a new
//! PostgreSQL database for events and a new MariaDB/MySQL database for read
//! models (URLs from CARELOG_TEST_PG_URL / CARELOG_TEST_MYSQL_URL).

use std::collections::HashMap;

use carelog::config::Settings;
use carelog::startup::Application;
use carelog::state::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Servers,
}

/// Generates one test per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! dual {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$name($crate::helpers::Backend::Embedded).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn servers() {
                    super::$name($crate::helpers::Backend::Servers).await
                }
            }
        )*
    };
}

/// A small PNG image with some variation (so thumbnails have content).
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 255) as u8, (y % 255) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub fn pg_url() -> String {
    std::env::var("CARELOG_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("CARELOG_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Creates empty databases on both servers; returns their URLs.
pub async fn fresh_databases() -> (String, String) {
    let name = format!("carelog_t_{}", uuid::Uuid::new_v4().simple());
    let mut pg = sqlx::PgConnection::connect(&pg_url())
        .await
        .expect("PostgreSQL is not reachable (CARELOG_TEST_PG_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut pg)
        .await
        .expect("create pg db");
    let mut my = sqlx::MySqlConnection::connect(&mysql_url())
        .await
        .expect("MySQL is not reachable (CARELOG_TEST_MYSQL_URL)");
    sqlx::query(&format!(
        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut my)
    .await
    .expect("create mysql db");
    (with_db(&pg_url(), &name), with_db(&mysql_url(), &name))
}

/// Another server on the same databases as `app` (PostgreSQL + MySQL only:
/// embedded is one process per data dir), with its own data dir, running
/// until the test ends.
pub struct Instance {
    pub state: AppState,
    /// `http://127.0.0.1:<port>/api/v1`
    pub base: String,
    pub _dir: tempfile::TempDir,
}

pub async fn second_instance(app: &TestApp) -> Instance {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars = app.vars.clone();
    vars.insert("CARELOG_DATA_DIR".into(), dir.path().display().to_string());
    let settings = Settings::from_map(&vars).expect("settings");
    let other = Application::build(settings).await.expect("a second instance builds");
    let base = format!("http://127.0.0.1:{}/api/v1", other.port());
    let state = other.state().clone();
    tokio::spawn(other.run_until_stopped());
    Instance { state, base, _dir: dir }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub admin_token: String,
    pub vars: HashMap<String, String>,
    /// The private metrics listener's port (`CARELOG_METRICS_BIND`).
    pub metrics_port: Option<u16>,
    pub _dir: tempfile::TempDir,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        carelog::telemetry::init();
    }
}

/// Settings for a test app; the same map starts a subprocess server.
pub async fn test_vars(backend: Backend, dir: &std::path::Path) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    vars.insert("CARELOG_BIND".into(), "127.0.0.1:0".into());
    vars.insert("CARELOG_DATA_DIR".into(), dir.display().to_string());
    vars.insert(
        "CARELOG_JWT_SECRET".into(),
        "test-secret-test-secret-test-secret-0123".into(),
    );
    // Every test talks from 127.0.0.1, far above a client's rate: the limiter
    // has its own tests (front_door), which set it.
    vars.insert("CARELOG_RATE_LIMIT_PER_MINUTE".into(), "0".into());
    // Tests run the scheduled jobs themselves, each period as of a chosen
    // instant (`app::jobs::run`, `carelog jobs run`): no run of the server's
    // own clock lands in the middle of a test.
    vars.insert("CARELOG_JOBS_ENABLED".into(), "false".into());
    if backend == Backend::Servers {
        let (pg, my) = fresh_databases().await;
        vars.insert("CARELOG_EVENT_STORE_URL".into(), pg);
        vars.insert("CARELOG_READ_STORE_URL".into(), my);
    }
    vars
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Like [`spawn_app`], with extra settings (e.g. Kafka).
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, String)]) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars = test_vars(backend, dir.path()).await;
    for (k, v) in extra {
        vars.insert(k.to_string(), v.clone());
    }
    let settings = Settings::from_map(&vars).expect("settings");
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let mut t = TestApp {
        base,
        client,
        state,
        admin_token: String::new(),
        vars,
        metrics_port,
        _dir: dir,
    };
    create_admin(&t.state, "admin", ADMIN_PASSWORD, "13800000000").await;
    t.admin_token = t.login("admin", ADMIN_PASSWORD).await;
    t
}

pub async fn create_admin(state: &AppState, username: &str, password: &str, phone: &str) {
    let user = domain::user::NewUser {
        username: username.into(),
        phone: domain::values::PhoneNumber::parse(phone).unwrap(),
        password_hash: String::new(),
        role: domain::user::Role::Admin,
        name: "管理员".into(),
        avatar: None,
        recorder: None,
        doctor: None,
    };
    carelog::app::users::create(
        state,
        user,
        password,
        carelog::state::RequestMeta::system("CreateAdmin"),
    )
    .await
    .expect("admin created");
}

/// A response: status and parsed envelope.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub fn id(&self) -> String {
        self.body["data"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {:?}", self.body))
            .to_string()
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.is_success(),
            "expected 2xx, got {} {}",
            self.status,
            self.body
        );
        assert_eq!(
            self.body["code"].as_u64(),
            Some(self.status.as_u16() as u64),
            "code equals status"
        );
        self
    }
    #[track_caller]
    pub fn err(self, status: u16, error: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["code"].as_u64(), Some(status as u64));
        assert_eq!(self.body["error"], error, "body: {}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Resp { status, body, headers }
    }

    /// A multipart request (uploads, health records with files).
    pub async fn multipart(&self, path: &str, token: &str, form: reqwest::multipart::Form) -> Resp {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        Resp { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(token), Some(body), &[]).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .send(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
                &[],
            )
            .await
            .ok();
        r.data()["access_token"].as_str().expect("access token").to_string()
    }

    /// Creates a recorder and returns (id, token).
    pub async fn recorder(&self, n: u32) -> (String, String) {
        let username = format!("recorder{n}");
        let id = self
            .post(
                "/users",
                &self.admin_token,
                json!({
                    "username": username, "phone": format!("1390000{n:04}"), "password": "recorder-pass",
                    "role": "recorder", "name": format!("记录员{n}"),
                    "recorder": {"employee_id": format!("E{n:04}"), "work_area": "徐汇区"}
                }),
            )
            .await
            .ok()
            .id();
        let token = self.login(&username, "recorder-pass").await;
        (id, token)
    }

    /// Creates a doctor or an auditor and returns (id, token).
    pub async fn staff(&self, role: &str, n: u32) -> (String, String) {
        let username = format!("{role}{n}");
        let mut body = json!({"username": username, "phone": format!("1350000{n:04}"), "password": "staff-pass-1",
                              "role": role, "name": format!("{role}{n}")});
        if role == "doctor" {
            body["doctor"] = json!({"license_number": format!("L-{n}"), "specialty": "全科"});
        }
        let id = self.post("/users", &self.admin_token, body).await.ok().id();
        let token = self.login(&username, "staff-pass-1").await;
        (id, token)
    }

    /// A health record for `patient` by the recorder with `token`; its id.
    pub async fn record(&self, token: &str, patient: &str, notes: &str) -> String {
        let today = chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive();
        self.post(
            "/health-records",
            token,
            json!({"patient_id": patient, "visit_date": today.to_string(), "visit_time": "08:00",
                   "vital_signs": {"blood_pressure": "120/80", "heart_rate": 70}, "notes": notes}),
        )
        .await
        .ok()
        .data()["record_id"]
            .as_str()
            .expect("record id")
            .to_string()
    }

    pub async fn family(&self, name: &str) -> String {
        self.post(
            "/families",
            &self.admin_token,
            json!({"family_name": name, "primary_address": format!("上海市{name}路1号"), "contact_phone": "13912345678"}),
        )
        .await
        .ok()
        .id()
    }

    pub async fn patient(&self, family: &str, name: &str) -> String {
        self.post(
            &format!("/families/{family}/patients"),
            &self.admin_token,
            json!({"name": name, "gender": "female", "birth_date": "1949-12-31", "id_card": "11010519491231002X",
                   "relationship_to_head": "本人", "medical_history": ["高血压"], "current_medications": ["氨氯地平"]}),
        )
        .await
        .ok()
        .id()
    }

    pub async fn package(&self) -> String {
        self.post(
            "/service-packages",
            &self.admin_token,
            json!({"name": "基础护理包", "price": "1999.00", "duration_days": 90, "service_frequency": 4, "service_items": ["测血压"]}),
        )
        .await
        .ok()
        .id()
    }

    pub async fn subscribe(&self, patient: &str, package: &str, recorder: &str) -> String {
        let today = today();
        self.post(
            "/subscriptions",
            &self.admin_token,
            json!({"patient_id": patient, "package_id": package, "recorder_id": recorder, "start_date": today.to_string()}),
        )
        .await
        .ok()
        .id()
    }

    /// Number of events in the store.
    pub async fn event_count(&self) -> i64 {
        self.state.store.head().await.expect("head")
    }

    /// Waits until the audit sealer has hashed every event; what
    /// `carelog audit verify` then finds.
    pub async fn sealed(&self) -> carelog::audit::Verification {
        for _ in 0..200 {
            let v = carelog::audit::verify(&self.state.store).await.unwrap();
            if v.unsealed == 0 && v.verified == self.event_count().await {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the sealer did not catch up");
    }
}

/// Today in the server's time zone (Asia/Shanghai), as the API dates things.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}
