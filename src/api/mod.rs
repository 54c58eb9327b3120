//! HTTP handlers, grouped by resource. Handlers are thin: extract, build a
//! command (or call a query), execute, wrap in the envelope.

pub mod access;
pub mod audit;
pub mod auth;
pub mod body;
pub mod erasure;
pub mod families;
pub mod files;
pub mod health;
pub mod hospitals;
pub mod orders;
pub mod packages;
pub mod records;
pub mod subscriptions;
pub mod users;
pub mod visits;

use actix_web::web;
use domain::Validator;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::ApiError;
pub use body::Body;

/// `page` and `limit` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn params(&self) -> Result<projections::PageParams, ApiError> {
        projections::PageParams::parse(self.page, self.limit).map_err(|(f, why)| ApiError::field(f, why))
    }
}

/// Parses a path id into its typed form; a malformed id is simply not found.
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}

/// An optional UUID field (empty = absent); a malformed one is recorded.
pub fn uuid_field<T: std::str::FromStr>(v: &mut Validator, field: &str, raw: Option<&String>) -> Option<T> {
    raw.filter(|s| !s.is_empty())
        .and_then(|s| v.check(field, s.trim().parse::<T>().map_err(|_| "应为UUID".to_string())))
}

/// A required field: present, else the validator records it as missing.
pub fn required<'a, T>(v: &mut Validator, field: &str, value: &'a Option<T>) -> Option<&'a T> {
    if value.is_none() {
        v.add(field, "必填");
    }
    value.as_ref()
}

/// A single required field parsed on its own (status-change bodies).
pub fn parse_required<T>(
    field: &str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ApiError> {
    match raw {
        None => Err(ApiError::field(field, "必填")),
        Some(s) => parse(s).map_err(|e| ApiError::field(field, e)),
    }
}

/// The list envelope `{<name>: [...], total, page, limit}`.
pub fn list_json<T: serde::Serialize>(name: &str, page: projections::Page<T>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(name.into(), serde_json::to_value(page.items).unwrap_or_default());
    m.insert("total".into(), page.total.into());
    m.insert("page".into(), page.page.into());
    m.insert("limit".into(), page.limit.into());
    serde_json::Value::Object(m)
}

/// One route the API serves: its method and its path under `/api/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
}

/// The route table. Every handler module registers its routes through this
/// (never through actix directly), so the table that the authorization matrix
/// test and the OpenAPI check read is, by construction, what the server serves.
pub struct Routes<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    table: Vec<RouteInfo>,
}

macro_rules! method {
    ($name:ident, $verb:literal, $route:path) => {
        pub fn $name<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
        where
            F: actix_web::Handler<Args>,
            Args: actix_web::FromRequest + 'static,
            F::Output: actix_web::Responder + 'static,
        {
            if let Some(cfg) = self.cfg.as_deref_mut() {
                cfg.route(path, $route().to(handler));
            }
            self.table.push(RouteInfo { method: $verb, path });
            self
        }
    };
}

impl<'a> Routes<'a> {
    method!(get, "GET", web::get);
    method!(post, "POST", web::post);
    method!(patch, "PATCH", web::patch);
}

/// Registers every route of the API (paths relative to `/api/v1`).
fn register(r: &mut Routes) {
    auth::routes(r);
    users::routes(r);
    families::routes(r);
    packages::routes(r);
    subscriptions::routes(r);
    visits::routes(r);
    files::routes(r);
    records::routes(r);
    orders::routes(r);
    hospitals::routes(r);
    access::routes(r);
    audit::routes(r);
    erasure::routes(r);
    r.get("/health", health::health);
}

/// Every route of the API, for tests and documentation checks.
pub fn route_table() -> Vec<RouteInfo> {
    let mut r = Routes {
        cfg: None,
        table: Vec::new(),
    };
    register(&mut r);
    r.table
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1").configure(|c| {
        register(&mut Routes {
            cfg: Some(c),
            table: Vec::new(),
        })
    }))
    .route("/health", web::get().to(health::health));
}

/// The success envelope every answer has: `data` is the operation's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Equals the HTTP status.
    pub code: u16,
    /// For people, in Chinese ("成功").
    pub message: String,
    pub data: T,
}

/// The error envelope: `data` is null, `error` a stable machine string.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Equals the HTTP status.
    pub code: u16,
    /// For people, in Chinese.
    pub message: String,
    /// Always null on errors.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// `validation_failed`, `unauthorized`, `forbidden`, `not_found`, `version_conflict`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `idempotency_key_reused`,
    /// `rate_limited`, `unavailable`, `internal`.
    pub error: String,
    /// For `validation_failed`: field → why; `version_conflict`: `current_version`;
    /// `rate_limited`: `retry_after`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// For `internal`: the request id to quote.
    pub request_id: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "carelog API", version = "1", description = "Home-care recording backend. Every response is the envelope {code, message, data}; errors add error and details."),
    paths(
        auth::login, auth::refresh, auth::logout, auth::me, auth::update_me, auth::change_password,
        users::create_user, users::list_users, users::get_user, users::update_user, users::change_status, users::reset_password,
        users::get_recorder, users::get_doctor,
        families::create_family, families::update_family, families::list_families, families::get_family,
        families::create_patient, families::get_patient, families::update_patient,
        packages::create_package, packages::list_packages,
        subscriptions::create_subscription, subscriptions::change_status, subscriptions::change_payment,
        subscriptions::get_subscription, subscriptions::list_subscriptions,
        visits::schedule, visits::list, visits::today, visits::get, visits::confirm, visits::cancel, visits::reschedule, visits::complete,
        files::upload, files::download, files::download_thumbnail,
        records::create, records::get, records::list_for_patient, records::request_order,
        records::amend, records::unlock,
        orders::list_requests, orders::get_request, orders::issue, orders::get_order, orders::complete, orders::cancel,
        orders::patient_orders, orders::notifications, orders::mark_read,
        hospitals::create_hospital, hospitals::hospital_status, hospitals::add_department, hospitals::department_status,
        hospitals::add_doctor, hospitals::doctor_status, hospitals::open_slot, hospitals::search, hospitals::get_hospital,
        hospitals::slots, hospitals::book, hospitals::bookings, hospitals::get_booking, hospitals::confirm,
        hospitals::complete, hospitals::cancel,
        access::access_log, access::logins,
        audit::events, audit::state, erasure::erase,
        health::health, crate::metrics::admin_metrics,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
