//! `GET /audit/access`: the access log, for auditors and admins. Who read
//! which patient's data, through which endpoint, when and from where.
//! `GET /audit/logins`: failed, throttled and successful logins.

use actix_web::web;
use chrono::{DateTime, Utc};
use domain::ids::{PatientId, UserId};
use domain::user::Role;
use domain::Validator;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::access_log::{AccessFilter, AccessRecord};
use crate::api::error::{ok, ApiResult};
use crate::api::{paging, uuid_field};
use crate::auth::Principal;
use crate::logins::LoginAttemptView;
use crate::state::AppState;

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/audit/access", access_log).get("/audit/logins", logins);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    /// Only reads of this patient.
    pub patient_id: Option<String>,
    /// Only reads by this user (id).
    pub actor: Option<String>,
    /// From this instant on, inclusive (RFC 3339, e.g. `2024-05-01T00:00:00+08:00`).
    pub from: Option<String>,
    /// Up to this instant, inclusive (RFC 3339).
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{entries:[...], total, page, limit}`
    AccessList { entries: AccessRecord }
);

crate::api::list_page!(
    /// `{attempts:[...], total, page, limit}`
    LoginList { attempts: LoginAttemptView }
);

/// An RFC 3339 instant; empty is absent, malformed is recorded against `field`.
pub fn instant(v: &mut Validator, field: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    // An unencoded `+08:00` in a URL arrives as ` 08:00`; take it as meant.
    let repaired = || match raw.rsplit_once(' ') {
        Some((time, offset)) if time.len() >= 19 => parse(&format!("{time}+{offset}")),
        _ => parse(raw),
    };
    v.check(
        field,
        parse(raw)
            .or_else(|_| repaired())
            .map_err(|_| "应为RFC 3339时间，如2024-05-01T00:00:00+08:00".to_string()),
    )
}

#[utoipa::path(get, path = "/api/v1/audit/access", tag = "audit", params(AccessQuery), security(("bearer" = [])),
    responses((status = 200, description = "oldest first", body = crate::api::Envelope<AccessList>),
        (status = 400, description = "names the field (patient_id, actor, from, to, page, limit)", body = crate::api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = crate::api::ErrorBody)))]
pub async fn access_log(state: web::Data<AppState>, p: Principal, q: web::Query<AccessQuery>) -> ApiResult {
    p.require(&[Role::Auditor, Role::Admin])?;
    let mut v = Validator::new();
    let patient: Option<PatientId> = uuid_field(&mut v, "patient_id", q.patient_id.as_ref());
    let actor: Option<UserId> = uuid_field(&mut v, "actor", q.actor.as_ref());
    let from = instant(&mut v, "from", q.from.as_deref());
    let to = instant(&mut v, "to", q.to.as_deref());
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            v.add("to", "不能早于from");
        }
    }
    v.finish()?;
    let page = paging(q.page, q.limit)?;
    let filter = AccessFilter {
        patient_id: patient.map(|p| p.to_string()),
        actor_id: actor.map(|a| a.to_string()),
        from,
        to,
    };
    Ok(ok(AccessList::from(state.access.query(&filter, page).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginsQuery {
    /// Only attempts for this username (matched through its keyed hash); up to 64 characters.
    #[param(max_length = 64)]
    pub username: Option<String>,
    /// From this instant on, inclusive (RFC 3339).
    pub from: Option<String>,
    /// Up to this instant, inclusive (RFC 3339).
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit/logins", tag = "audit", params(LoginsQuery), security(("bearer" = [])),
    responses((status = 200, description = "oldest first", body = crate::api::Envelope<LoginList>),
        (status = 400, description = "names the field (username, from, to, page, limit)", body = crate::api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = crate::api::ErrorBody)))]
pub async fn logins(state: web::Data<AppState>, p: Principal, q: web::Query<LoginsQuery>) -> ApiResult {
    p.require(&[Role::Auditor, Role::Admin])?;
    let mut v = Validator::new();
    let from = instant(&mut v, "from", q.from.as_deref());
    let to = instant(&mut v, "to", q.to.as_deref());
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            v.add("to", "不能早于from");
        }
    }
    if q.username.as_deref().is_some_and(|u| u.chars().count() > 64) {
        v.add("username", "不能超过64个字符");
    }
    v.finish()?;
    let page = paging(q.page, q.limit)?;
    let filter = crate::logins::LoginFilter {
        username: q.username.clone().filter(|u| !u.trim().is_empty()),
        from,
        to,
    };
    Ok(ok(LoginList::from(state.logins.query(&filter, page).await?)))
}
