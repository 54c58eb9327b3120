//! HTTP handlers, grouped by resource. Handlers are thin: extract, build a
//! command (or call a query), execute, wrap in the envelope.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod body;
pub mod consistency;
pub mod erasure;
pub mod error;
pub mod evv;
pub mod extract;
pub mod families;
pub mod fhir;
pub mod files;
pub mod front_door;
pub mod health;
pub mod hospitals;
pub mod idempotent;
pub mod metrics;
pub mod orders;
pub mod packages;
pub mod records;
pub mod reports;
pub mod subscriptions;
pub mod sync;
pub mod users;
pub mod visits;

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::app::error::AppError;
pub use body::Body;

/// `page` and `limit` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn params(&self) -> Result<projections::PageParams, AppError> {
        paging(self.page, self.limit)
    }
}

/// A list's `page` and `limit` query parameters, checked (400 naming the field).
pub fn paging(page: Option<i64>, limit: Option<i64>) -> Result<projections::PageParams, AppError> {
    projections::PageParams::parse(page, limit).map_err(|(f, why)| AppError::field(f, why))
}

pub use crate::app::input::{parse_required, path_id, required, uuid_field};

/// A typed list page `{<name>: [...], total, page, limit}`: one struct per
/// list, so its OpenAPI schema names the array and cannot drift from the
/// answer. `list_page!(UserList { users: UserView })` also gives
/// `From<projections::Page<UserView>>`.
macro_rules! list_page {
    ($(#[$meta:meta])* $name:ident { $field:ident: $item:ty }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub $field: Vec<$item>,
            /// Items matching the filters, over all pages.
            pub total: i64,
            /// False when `total` is not an exact count. The audit lists
            /// (`/audit/events`, `/audit/access`, `/audit/logins`) count at most
            /// 10,000 entries (or to the end of the page asked for, past that):
            /// `total` is then that lower bound. An admin's family search counts
            /// at most 200 matching households, or, when the rarest pair of
            /// neighbouring characters of `search` is held by more than 200
            /// households (or `search` is one common character), as far as the
            /// page asked for: past that, `total` is an estimate (the share of
            /// matches among the households read, applied to every household
            /// holding that pair, or to all; never fewer than the matches found).
            pub total_exact: bool,
            /// This page, from 1.
            #[schema(minimum = 1)]
            pub page: u32,
            /// Items per page, 1 to 100.
            #[schema(minimum = 1, maximum = 100)]
            pub limit: u32,
        }

        impl From<projections::Page<$item>> for $name {
            fn from(p: projections::Page<$item>) -> Self {
                Self {
                    $field: p.items,
                    total: p.total,
                    total_exact: p.total_exact,
                    page: p.page,
                    limit: p.limit,
                }
            }
        }
    };
}
pub(crate) use list_page;

pub use crate::app::input::MoneyInput;
pub use crate::app::{IdVersion, StatusChanged};

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
    method!(delete, "DELETE", web::delete);
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
    alerts::routes(r);
    hospitals::routes(r);
    access::routes(r);
    audit::routes(r);
    erasure::routes(r);
    evv::routes(r);
    sync::routes(r);
    fhir::routes(r);
    reports::routes(r);
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
    /// `rate_limited`, `unavailable`, `internal`; WeChat login and binding:
    /// `wechat_not_configured`, `wechat_not_bound`, `wechat_code_invalid`,
    /// `wechat_already_bound`, `wechat_unavailable`.
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
        auth::wechat_login, auth::wechat_bind, auth::wechat_unbind,
        users::create_user, users::list_users, users::get_user, users::update_user, users::change_status, users::reset_password,
        users::get_recorder, users::get_doctor,
        families::create_family, families::update_family, families::list_families, families::get_family,
        families::create_patient, families::get_patient, families::update_patient,
        packages::create_package, packages::list_packages,
        subscriptions::create_subscription, subscriptions::change_status, subscriptions::change_payment,
        subscriptions::get_subscription, subscriptions::list_subscriptions,
        visits::schedule, visits::list, visits::today, visits::get, visits::confirm, visits::cancel, visits::reschedule, visits::complete,
        visits::check_in, visits::check_out,
        evv::reason_codes, evv::list, evv::acknowledge, evv::resolve,
        files::upload, files::download, files::download_thumbnail,
        records::create, records::get, records::list_for_patient, records::request_order,
        records::amend, records::unlock,
        orders::list_requests, orders::get_request, orders::issue, orders::get_order, orders::complete, orders::cancel,
        orders::patient_orders, orders::notifications, orders::mark_read,
        alerts::list, alerts::get, alerts::acknowledge, alerts::resolve,
        hospitals::create_hospital, hospitals::hospital_status, hospitals::add_department, hospitals::department_status,
        hospitals::add_doctor, hospitals::doctor_status, hospitals::open_slot, hospitals::search, hospitals::get_hospital,
        hospitals::slots, hospitals::book, hospitals::bookings, hospitals::get_booking, hospitals::confirm,
        hospitals::complete, hospitals::cancel,
        access::access_log, access::logins,
        audit::events, audit::state, erasure::erase,
        sync::push, sync::pull,
        fhir::patient, fhir::everything,
        reports::weekly,
        health::health, metrics::admin_metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &Conventions)
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

/// What every operation can answer besides its own results, added to each
/// documented operation so they are not repeated by hand (an operation's own
/// entry for a status wins):
/// - 400 `validation_failed` wherever there is a parameter, a body or a header
///   to get wrong (every command: `Idempotency-Key`, `If-Match`);
/// - 401 `unauthorized` on secured operations, 403 `forbidden` on those a role
///   may be refused (auditors are refused everything but the audit trail, the
///   user directory, the EVV exceptions and their own session);
/// - 429 `rate_limited` with `Retry-After` everywhere but `/health` and `/metrics`;
/// - 413 and 415 on operations with a body;
/// - `Idempotency-Key` on every command the idempotency middleware serves (all
///   secured POST and PATCH outside `/auth/`), with 422
///   `idempotency_key_reused` and 409 `conflict` for a repeat still in flight;
/// - 500 `internal` everywhere;
/// - `X-Carelog-Position` on every operation under `/api/v1` (a position the
///   request's reads must show), and on the successes of commands (the
///   position of the last event the command committed; see `crate::fence`).
///
/// It also documents `GET /api/v1/health`, the same handler as `GET /health`,
/// and gives every error response without a body the error envelope.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(health) = openapi.paths.paths.get("/health").cloned() {
            let mut v1 = health;
            if let Some(op) = v1.get.as_mut() {
                op.operation_id = Some("health_v1".into());
            }
            openapi.paths.paths.insert("/api/v1/health".into(), v1);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (command, op) in [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.put.as_mut()),
                (true, item.delete.as_mut()),
            ] {
                if let Some(op) = op {
                    conventions(path, command, op);
                }
            }
        }
    }
}

fn conventions(path: &str, command: bool, op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};

    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let own_session = path.starts_with("/api/v1/auth/");
    let exempt = matches!(path, "/health" | "/api/v1/health" | "/metrics");
    let has_body = op.request_body.is_some();
    let idempotent = secured && command && !own_session;
    if idempotent {
        let params = op.parameters.get_or_insert_with(Vec::new);
        if !params.iter().any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key")) {
            params.push(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "A repeat with the same key (per user) and body answers the first response and writes \
                         nothing; 1 to 255 characters.",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255)),
                    ))
                    .build(),
            );
        }
    }
    if path.starts_with("/api/v1/") {
        op.parameters.get_or_insert_with(Vec::new).push(
            ParameterBuilder::new()
                .name(consistency::POSITION.as_str())
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "A position of the event store (a command's answer names its own): the request's reads \
                     wait until the read models show it. A position past the store's head is not waited for.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .maximum(Some(9_007_199_254_740_991.0)),
                ))
                .build(),
        );
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description).into());
    };
    if has_params || has_body || command {
        add(
            "400",
            "`validation_failed`: a field, parameter or header is missing or malformed; `details` names each",
        );
    }
    if secured {
        add("401", "`unauthorized`: no token, or an invalid, expired or revoked one");
    }
    if secured && !own_session {
        add(
            "403",
            "`forbidden`: the caller's role may not do this (auditors may only read the audit trail, users and EVV exceptions)",
        );
    }
    if has_body || idempotent {
        add("413", "`payload_too_large`: the body is over the limit");
    }
    if has_body {
        add(
            "415",
            "`unsupported_media_type`: the body is not of the documented content type",
        );
    }
    if idempotent {
        add(
            "409",
            "`conflict` or `version_conflict`: a business rule refused the command, If-Match is stale, \
             or a request with the same Idempotency-Key is still in flight",
        );
        add(
            "422",
            "`idempotency_key_reused`: the Idempotency-Key was used for another request",
        );
    }
    add(
        "500",
        "`internal`: a fault on our side; `request_id` names it in the logs",
    );
    if !exempt {
        op.responses
            .responses
            .entry("429".to_string())
            .or_insert_with(|| error_response("`rate_limited`: too many requests from this address").into());
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let utoipa::openapi::RefOr::T(response) = response else {
            continue;
        };
        let failure = status.starts_with('4') || status.starts_with('5');
        if failure && response.content.is_empty() {
            response.content.insert("application/json".into(), error_content());
        }
        if command && status.starts_with('2') {
            response
                .headers
                .insert(consistency::POSITION.as_str().into(), committed_position());
        }
        if status == "429" && !response.headers.contains_key("Retry-After") {
            response.headers.insert("Retry-After".into(), retry_after());
        }
    }
}

fn error_content() -> utoipa::openapi::Content {
    utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
        .build()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content("application/json", error_content())
        .build()
}

fn committed_position() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some(
            "the event store position of the last event the command committed (absent when it committed none); \
             a later read waits until the read models show it, and may send it back in this header",
        ))
        .build()
}

fn retry_after() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("seconds to wait before trying again"))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;
    use utoipa::OpenApi;

    use super::*;

    /// Operations whose success is not a JSON envelope, and their content types.
    /// Not the JSON envelope: file bytes, and FHIR resources (`application/fhir+json`).
    const NOT_JSON: &[(&str, &str)] = &[
        ("GET", "/api/v1/files/{id}"),
        ("GET", "/api/v1/files/{id}/thumbnail"),
        ("GET", "/api/v1/fhir/Patient/{id}"),
        ("GET", "/api/v1/fhir/Patient/{id}/$everything"),
    ];

    /// Served outside `/api/v1` (and so outside the route table), documented.
    const OUTSIDE: &[(&str, &str)] = &[("GET", "/health"), ("GET", "/metrics")];

    fn doc() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
    }

    /// A schema with `$ref`s into `components/schemas` resolved (top level only).
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "post", "patch", "put", "delete"] {
                if item.get(method).is_some() {
                    ops.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn every_route_is_documented_with_its_success_body_and_nothing_else_is() {
        let doc = doc();
        let mut served = BTreeSet::new();
        for r in route_table() {
            let path = format!("/api/v1{}", r.path);
            let op = &doc["paths"][&path][r.method.to_lowercase()];
            assert!(
                op.is_object(),
                "{} {path} is served but not in the OpenAPI document",
                r.method
            );
            // Every `{param}` of the route is a documented path parameter.
            for name in r.path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == name));
                assert!(declared, "{} {path}: path parameter {name} is not documented", r.method);
                // A malformed or unknown id answers 404.
                assert!(
                    op["responses"]["404"].is_object(),
                    "{} {path}: takes {{{name}}} but documents no 404",
                    r.method
                );
            }
            let successes: Vec<(&String, &Value)> = op["responses"]
                .as_object()
                .map(|m| m.iter().filter(|(s, _)| s.starts_with('2')).collect())
                .unwrap_or_default();
            assert!(!successes.is_empty(), "{} {path} documents no 2xx response", r.method);
            for (status, response) in successes {
                let content = response["content"].as_object();
                if NOT_JSON.contains(&(r.method, path.as_str())) {
                    let content = content.unwrap_or_else(|| panic!("{} {path} {status}: no content", r.method));
                    assert!(
                        content.keys().all(|k| k != "application/json"),
                        "{} {path} {status}: not JSON",
                        r.method
                    );
                    assert!(content.values().all(|c| c["schema"].is_object()));
                    continue;
                }
                let schema = content
                    .and_then(|c| c.get("application/json"))
                    .map(|c| &c["schema"])
                    .unwrap_or_else(|| panic!("{} {path} {status} has no JSON body schema", r.method));
                let envelope = resolve(&doc, schema);
                for field in ["code", "message", "data"] {
                    assert!(
                        envelope["properties"][field].is_object(),
                        "{} {path} {status}: the body is not the envelope (no {field}): {envelope}",
                        r.method
                    );
                }
                let data = resolve(&doc, &envelope["properties"]["data"]);
                assert!(
                    data.get("type").is_some() || data.get("$ref").is_some() || data.get("oneOf").is_some(),
                    "{} {path} {status}: `data` has no schema",
                    r.method
                );
            }
            served.insert((r.method.to_string(), path));
        }
        for (m, p) in OUTSIDE {
            served.insert((m.to_string(), p.to_string()));
        }
        let documented = operations(&doc);
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(phantom.is_empty(), "documented but not served: {phantom:?}");
    }

    #[test]
    fn every_failure_is_documented_with_the_error_envelope() {
        let doc = doc();
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][method.to_lowercase()];
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) || path.ends_with("/health") {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status} is not documented with ErrorBody"
                );
            }
            assert!(responses.contains_key("500"), "{method} {path}: no 500");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let public = matches!(
                path.as_str(),
                "/api/v1/auth/login" | "/api/v1/auth/wechat" | "/health" | "/api/v1/health"
            );
            assert!(
                secured || public,
                "{method} {path} is neither secured nor known to be public"
            );
            if secured {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
            if !path.ends_with("/health") && path != "/metrics" {
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{method} {path}: 429 without Retry-After"
                );
            }
        }
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }

    #[test]
    fn create_schemas_name_the_same_fields_as_the_bodies_read() {
        // POST documents the required fields of a body struct that PATCH shares.
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for (documented, read) in [("NewFamily", "FamilyInput"), ("NewPatient", "PatientInput")] {
            let names = |s: &str| -> BTreeSet<String> {
                schemas[s]["properties"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            assert!(!names(read).is_empty(), "{read}");
            assert_eq!(names(documented), names(read), "{documented} vs {read}");
        }
    }

    #[test]
    fn list_pages_paginate_within_bounds() {
        let doc = doc();
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][method.to_lowercase()];
            let Some(params) = op["parameters"].as_array() else {
                continue;
            };
            let param = |name: &str| params.iter().find(|p| p["name"] == name && p["in"] == "query");
            if let Some(limit) = param("limit") {
                assert_eq!(limit["schema"]["minimum"], 1, "{method} {path} limit");
                assert_eq!(limit["schema"]["maximum"], 100, "{method} {path} limit");
                assert_eq!(limit["schema"]["default"], 20, "{method} {path} limit");
                let page = param("page").unwrap_or_else(|| panic!("{method} {path}: limit without page"));
                assert_eq!(page["schema"]["minimum"], 1, "{method} {path} page");
            }
        }
        // And every answer that is a page takes them.
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][method.to_lowercase()];
            let Some(schema) = op["responses"]["200"]["content"]["application/json"].get("schema") else {
                continue;
            };
            let data = resolve(&doc, &resolve(&doc, schema)["properties"]["data"]);
            if data["properties"]["total"].is_object() {
                let takes = |name: &str| {
                    op["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
                };
                assert!(
                    takes("page") && takes("limit"),
                    "{method} {path} answers a page without page/limit"
                );
            }
        }
    }
}
