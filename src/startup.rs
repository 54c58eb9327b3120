//! Wiring: `Application::build(settings)` opens the stores, starts the
//! followers and binds the HTTP server. `main` and the integration tests both
//! use it; tests bind port 0 and read `port()`.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use projections::ReadStore;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::error::{respond, ApiError};
use crate::app::error::AppError;
use crate::auth::JwtKeys;
use crate::config::{Secret, Settings};
use crate::data_dir::{self, DataDirLock};
use crate::runner::{start_projectors, ProjectorRunner};
use crate::state::AppState;
use crate::store::EventStore;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    runner: ProjectorRunner,
    reactors: Vec<tokio::task::JoinHandle<()>>,
    sealer: tokio::task::JoinHandle<()>,
    relay: Option<tokio::task::JoinHandle<()>>,
    /// The private metrics listener and its port (`CARELOG_METRICS_BIND`).
    metrics: Option<(tokio::task::JoinHandle<std::io::Result<()>>, u16)>,
    /// Held for the process's life in embedded mode: one process per data dir.
    _data_lock: Option<DataDirLock>,
}

/// The stores, opened and migrated.
pub struct Stores {
    pub store: EventStore,
    pub read: ReadStore,
    pub data_lock: Option<DataDirLock>,
}

impl Stores {
    /// Opens both stores. In embedded mode `exclusive` also takes the data
    /// directory lock (the server and `rebuild` do; `create-admin` does not).
    pub async fn open(settings: &Settings, exclusive: bool) -> anyhow::Result<Self> {
        if data_dir::in_use(settings) {
            data_dir::prepare(&settings.stores.data_dir)?;
        }
        let data_lock = if exclusive { data_dir::lock(settings)? } else { None };
        let store = EventStore::connect(
            settings.stores.event_store_url.as_ref().map(Secret::expose),
            &settings.stores.data_dir,
            &settings.master_key()?,
        )
        .await
        .context("cannot open the event store (CARELOG_EVENT_STORE_URL)")?;
        let read_url = match &settings.stores.read_store_url {
            Some(url) => url.expose().to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                settings.stores.data_dir.join(data_dir::READ_DB).display()
            ),
        };
        let read = ReadStore::connect(&read_url)
            .await
            .context("cannot open the read store (CARELOG_READ_STORE_URL)")?;
        Ok(Self { store, read, data_lock })
    }
}

/// The blob store: S3 when configured, else the upload directory.
pub fn blob_store(settings: &Settings) -> anyhow::Result<crate::files::BlobStore> {
    let store = match &settings.files.s3 {
        Some(s3) => crate::files::BlobStore::s3(s3),
        None => crate::files::BlobStore::local(&settings.files.upload_dir),
    };
    store.map_err(|e| anyhow::anyhow!("file storage (CARELOG_UPLOAD_DIR / CARELOG_S3_*): {e}"))
}

/// The state every handler, reactor and CLI command works with.
pub fn app_state(
    store: EventStore,
    read: ReadStore,
    settings: &Settings,
    waiter: crate::runner::ProjectionWaiter,
    relay: Option<crate::relay::RelayHandle>,
) -> anyhow::Result<AppState> {
    let secret = settings.jwt_secret()?;
    let jwt = JwtKeys::new(
        secret.expose(),
        settings.tokens.access_ttl_secs,
        settings.tokens.refresh_ttl_secs,
    );
    let login_key: [u8; 32] = {
        use sha2::{Digest, Sha256};
        Sha256::digest(format!("carelog-login-username:{}", secret.expose()).as_bytes()).into()
    };
    let wechat_key: [u8; 32] = {
        use sha2::{Digest, Sha256};
        Sha256::digest(format!("carelog-wechat-openid:{}", secret.expose()).as_bytes()).into()
    };
    let wechat = crate::wechat::WechatClient::new(&settings.wechat, wechat_key)
        .context("cannot create the WeChat client (CARELOG_WECHAT_*)")?
        .map(Arc::new);
    let door = &settings.front_door;
    Ok(AppState {
        wechat,
        access: crate::access_log::AccessLog::start(store.backend().clone()),
        logins: crate::logins::LoginAttempts::new(
            store.backend().clone(),
            login_key,
            door.login_max_failures,
            door.login_window_secs,
        ),
        rate_limiter: crate::front_door::RateLimiter::new(door.rate_limit_per_minute),
        sessions: Arc::new(crate::sessions::SessionCache::new(std::time::Duration::from_secs(
            u64::from(settings.tokens.session_cache_secs),
        ))),
        blobs: blob_store(settings)?,
        settings: Arc::new(settings.clone()),
        store,
        read_models: read,
        jwt,
        waiter,
        relay,
    })
}

/// `GET /api/openapi.json`: the document serialized at start-up.
fn openapi_json(document: web::Bytes) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone + 'static {
    move || {
        std::future::ready(
            HttpResponse::Ok()
                .content_type(actix_web::http::header::ContentType::json())
                .body(document.clone()),
        )
    }
}

/// CORS for the configured origins only (browsers; the mini-program does not need it).
fn cors(door: &crate::config::FrontDoor) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::IF_MATCH,
        ])
        .allowed_header("idempotency-key")
        .allowed_header("x-carelog-position")
        .allowed_header("x-request-id")
        .allowed_header("x-correlation-id")
        .expose_headers([
            "etag",
            "x-request-id",
            "retry-after",
            "idempotent-replayed",
            "x-carelog-position",
        ])
        .max_age(3600);
    for origin in &door.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let stores = Stores::open(&settings, true).await?;
        let relay = match settings.relay_config()? {
            Some(config) => {
                let (handle, task) =
                    crate::relay::start(stores.store.clone(), config).context("cannot create the Kafka producer")?;
                Some((handle, task))
            }
            None => None,
        };
        let runner = start_projectors(stores.store.clone(), stores.read.clone(), projections::all_projectors()).await?;
        let state = app_state(
            stores.store,
            stores.read,
            &settings,
            runner.waiter.clone(),
            relay.as_ref().map(|(h, _)| h.clone()),
        )?;
        let mut reactors = crate::reactors::start_reactors(state.clone());
        reactors.push(crate::escalation::start(state.clone()));
        reactors.extend(crate::scheduler::start(state.clone()));
        reactors.push(crate::idempotency::start_purger(
            state.store.clone(),
            settings.limits.idempotency_ttl_secs,
        ));
        reactors.extend(state.rate_limiter.start_housekeeping());
        reactors.extend(crate::push::start(state.clone()));
        let sealer = crate::audit::start_sealer(state.store.clone());
        // Known to the other instances on the store before answering anyone.
        state.store.listening().await;
        let metrics = match settings.http.metrics_bind {
            Some(bind) => {
                let (server, port) = crate::api::metrics::serve_private(state.clone(), bind)
                    .map_err(|e| anyhow::anyhow!("cannot serve metrics on {bind} (CARELOG_METRICS_BIND): {e:?}"))?;
                tracing::info!(port, "metrics on their own listener");
                Some((tokio::spawn(server), port))
            }
            None => None,
        };
        let metrics_on_api = metrics.is_none();
        let listener =
            TcpListener::bind(settings.http.bind).with_context(|| format!("cannot bind {}", settings.http.bind))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        // Serialized once and shared by every worker: the document is
        // several megabytes as a tree, which each worker's `SwaggerUi` would
        // otherwise hold its own clone of.
        let openapi = web::Bytes::from(serde_json::to_vec(&crate::api::ApiDoc::openapi())?);
        let door = settings.front_door.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError(AppError::field("query", e.to_string())).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| ApiError(AppError::NotFound("resource")).into()),
                )
                .wrap(from_fn(crate::api::idempotent::middleware))
                // Outside the idempotency middleware, whose authentication
                // reads sessions: those reads wait for the named position too.
                .wrap(from_fn(crate::api::consistency::middleware))
                .wrap(Condition::new(!door.cors_origins.is_empty(), cors(&door)))
                .wrap(from_fn(crate::api::front_door::middleware))
                .wrap(from_fn(crate::metrics::middleware))
                .wrap(from_fn(crate::telemetry::request_id))
                .configure(crate::api::routes)
                .configure(|cfg| {
                    if metrics_on_api {
                        cfg.route("/metrics", web::get().to(crate::api::metrics::admin_metrics));
                    }
                })
                .route(
                    "/api/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/api/docs/"))
                            .finish()
                    }),
                )
                .route("/api/openapi.json", web::get().to(openapi_json(openapi.clone())))
                .service(
                    SwaggerUi::new("/api/docs/{_:.*}").config(utoipa_swagger_ui::Config::new(["/api/openapi.json"])),
                )
                .default_service(web::to(|| async { respond(AppError::NotFound("route")) }))
        })
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            state,
            runner,
            reactors,
            sealer,
            relay: relay.map(|(_, t)| t),
            metrics,
            _data_lock: stores.data_lock,
        })
    }

    /// The port of the private metrics listener, when `CARELOG_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.runner.handle.abort();
        self.reactors.iter().for_each(|r| r.abort());
        self.sealer.abort();
        if let Some(r) = self.relay {
            r.abort();
        }
        if let Some((m, _)) = self.metrics {
            m.abort();
        }
        result
    }
}
