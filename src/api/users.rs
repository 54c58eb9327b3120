//! User administration, and the recorder/doctor profile views.

use actix_web::web;
use domain::ids::UserId;
use domain::user::{DoctorChanges, RecorderChanges, Role, UserChanges, UserStatus};
use domain::values::{date, optional_text, text, PhoneNumber};
use domain::Validator;
use projections::users::UserView;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, parse_required, path_id, Body, IdVersion, StatusChanged};
use crate::app::error::AppError;
use crate::app::users::{self, new_password, update_profile, PasswordChanged};
pub use crate::app::users::{CreateUserRequest, DoctorInput, RecorderInput};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/users", create_user)
        .get("/users", list_users)
        .get("/users/{id}", get_user)
        .patch("/users/{id}", update_user)
        .patch("/users/{id}/status", change_status)
        .post("/users/{id}/password", reset_password)
        .get("/recorders/{id}", get_recorder)
        .get("/doctors/{id}", get_doctor);
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest, security(("bearer" = [])),
    responses((status = 201, description = "the new user's id", body = crate::api::Envelope<IdVersion>),
        (status = 409, description = "duplicate username, phone, employee_id or license_number", body = crate::api::ErrorBody)))]
pub async fn create_user(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<CreateUserRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let (user, password) = body.0.parse()?;
    let id = users::create(&state, user, &password, meta.context(Some(&p), "CreateUser")).await?;
    Ok(created(IdVersion {
        id: id.to_string(),
        version: 1,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// admin | recorder | doctor | auditor (empty: all)
    pub role: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{users:[...], total, page, limit}`
    UserList { users: UserView }
);

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery), security(("bearer" = [])),
    responses((status = 200, description = "admins and auditors (who put names on the audit trail's actor ids)", body = crate::api::Envelope<UserList>)))]
pub async fn list_users(state: web::Data<AppState>, p: Principal, q: web::Query<UserListQuery>) -> ApiResult {
    // Auditors put names on the actor ids of the audit trail.
    p.require(&[Role::Admin, Role::Auditor])?;
    let page = paging(q.page, q.limit)?;
    let role = match q.role.as_deref() {
        None | Some("") => None,
        Some(r) => Some(Role::parse(r).map_err(|e| AppError::field("role", e))?),
    };
    let users = state.read().await.users().list(role, page).await?;
    Ok(ok(UserList::from(users)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = crate::api::Envelope<UserView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such user, or not visible to the caller (others see only themselves)", body = crate::api::ErrorBody)))]
pub async fn get_user(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    let uid: UserId = path_id(&id, "user")?;
    if !p.is(Role::Admin) && !p.is(Role::Auditor) && p.user_id != uid {
        return Err(AppError::NotFound("user").into());
    }
    let user = users::user_view(&state, uid).await?;
    let version = user.version;
    Ok(ok_versioned(user, version))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    #[schema(required = true, value_type = String, pattern = "^(active|inactive|suspended)$")]
    pub status: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/users/{id}/status", tag = "users", request_body = StatusRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "user id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "a suspended user's tokens stop working at once", body = crate::api::Envelope<StatusChanged>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: an admin cannot deactivate themselves; `version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn change_status(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<StatusRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let uid: UserId = path_id(&id, "user")?;
    let status = parse_required("status", &body.0.status, UserStatus::parse)?;
    Ok(ok(users::change_status(&state, &p, &meta, uid, status).await?))
}

async fn profile(state: &AppState, id: &str, role: Role) -> ApiResult {
    let uid: UserId = path_id(id, role.as_str())?;
    let user = state.read().await.users().get(uid).await?;
    let user = user
        .filter(|u| u.role == role)
        .ok_or(AppError::NotFound(role.as_str()))?;
    let version = user.version;
    Ok(ok_versioned(user, version))
}

#[utoipa::path(get, path = "/api/v1/recorders/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "the recorder's user id")),
    responses((status = 200, description = "the user with its recorder profile", body = crate::api::Envelope<UserView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such recorder, or not the caller (recorders see only themselves)", body = crate::api::ErrorBody)))]
pub async fn get_recorder(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    // Admins see every recorder; a recorder sees their own profile.
    if !p.is(Role::Admin) && p.user_id.to_string() != id.as_str() {
        p.require(&[Role::Admin, Role::Recorder])?;
        return Err(AppError::NotFound("recorder").into());
    }
    profile(&state, &id, Role::Recorder).await
}

#[utoipa::path(get, path = "/api/v1/doctors/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "the doctor's user id")),
    responses((status = 200, description = "the user with its doctor profile", body = crate::api::Envelope<UserView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, body = crate::api::ErrorBody)))]
pub async fn get_doctor(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    // Doctors' profiles are visible to staff who work with them.
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    profile(&state, &id, Role::Doctor).await
}

/// Body of `PATCH /users/{id}`: all optional; a profile section only for its role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub avatar: Option<String>,
    pub recorder: Option<RecorderUpdate>,
    pub doctor: Option<DoctorUpdate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecorderUpdate {
    /// `YYYY-MM-DD`.
    pub cert_expiry_date: Option<String>,
    pub qualification_cert: Option<String>,
    pub health_cert: Option<String>,
    pub work_area: Option<String>,
    pub is_on_duty: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorUpdate {
    pub specialty: Option<String>,
    pub title: Option<String>,
    pub hospital: Option<String>,
    pub department: Option<String>,
    #[schema(value_type = Option<crate::api::MoneyInput>)]
    pub consultation_fee: Option<Decimal>,
    pub is_available: Option<bool>,
}

fn parse_changes(r: &UpdateUserRequest) -> Result<UserChanges, AppError> {
    let mut v = Validator::new();
    let opt = |v: &mut Validator, field: &str, raw: &Option<String>, max: usize| {
        v.check(field, optional_text(raw.as_deref(), max)).flatten()
    };
    let recorder = r.recorder.as_ref().map(|rec| RecorderChanges {
        cert_expiry_date: match rec.cert_expiry_date.as_deref() {
            None | Some("") => None,
            Some(d) => v.check("recorder.cert_expiry_date", date(d)),
        },
        qualification_cert: opt(&mut v, "recorder.qualification_cert", &rec.qualification_cert, 255),
        health_cert: opt(&mut v, "recorder.health_cert", &rec.health_cert, 255),
        work_area: opt(&mut v, "recorder.work_area", &rec.work_area, 255),
        is_on_duty: rec.is_on_duty,
    });
    let doctor = r.doctor.as_ref().map(|d| {
        if d.consultation_fee.is_some_and(|f| f < Decimal::ZERO) {
            v.add("doctor.consultation_fee", "不能为负数");
        }
        DoctorChanges {
            specialty: d
                .specialty
                .as_deref()
                .and_then(|s| v.check("doctor.specialty", text(s, 100))),
            title: opt(&mut v, "doctor.title", &d.title, 100),
            hospital: opt(&mut v, "doctor.hospital", &d.hospital, 255),
            department: opt(&mut v, "doctor.department", &d.department, 100),
            consultation_fee: d.consultation_fee,
            is_available: d.is_available,
        }
    });
    let changes = UserChanges {
        name: r.name.as_deref().and_then(|n| v.check("name", text(n, 50))),
        phone: r.phone.as_deref().and_then(|p| v.check("phone", PhoneNumber::parse(p))),
        avatar: opt(&mut v, "avatar", &r.avatar, 500),
        recorder,
        doctor,
    };
    v.finish()?;
    Ok(changes)
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "user id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<UserView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 400, description = "names the field; a profile section of another role is refused", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "phone in use, or version_conflict", body = crate::api::ErrorBody)))]
pub async fn update_user(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<UpdateUserRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let uid: UserId = path_id(&id, "user")?;
    let changes = parse_changes(&body.0)?;
    let current = users::user_view(&state, uid).await?;
    let ctx = meta.context(Some(&p), "UpdateUser");
    let view = update_profile(&state, uid, changes, Some(current.phone), ctx).await?;
    let version = view.version;
    Ok(ok_versioned(view, version))
}

/// Body of `POST /users/{id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// 8 to 128 characters, with letters and digits.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    pub new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", request_body = ResetPasswordRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "reset; every session of the user is revoked", body = crate::api::Envelope<PasswordChanged>),
        (status = 400, description = "new_password too weak", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody)))]
pub async fn reset_password(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<ResetPasswordRequest>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let uid: UserId = path_id(&id, "user")?;
    let mut v = Validator::new();
    let password = new_password(&mut v, body.0.new_password.as_ref());
    v.finish()?;
    let Some(password) = password else {
        return Err(AppError::field("new_password", "必填").into());
    };
    Ok(ok(users::reset_password(&state, &p, &meta, uid, &password).await?))
}
