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
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::routes)
            .configure(users::routes)
            .configure(families::routes)
            .configure(packages::routes)
            .configure(subscriptions::routes)
            .configure(visits::routes)
            .configure(files::routes)
            .configure(records::routes)
            .configure(orders::routes)
            .configure(hospitals::routes)
            .configure(access::routes)
            .configure(audit::routes)
            .configure(erasure::routes)
            .route("/health", web::get().to(health::health)),
    )
    .route("/health", web::get().to(health::health));
}

#[derive(OpenApi)]
#[openapi(
    info(title = "carelog API", version = "1", description = "Home-care recording backend. Every response is the envelope {code, message, data}; errors add error and details."),
    paths(
        auth::login, auth::refresh, auth::logout, auth::me,
        users::create_user, users::list_users, users::get_user, users::change_status, users::get_recorder, users::get_doctor,
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
        access::access_log,
        audit::events, audit::state, erasure::erase,
        health::health,
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
