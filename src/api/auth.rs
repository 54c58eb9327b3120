//! Login, token refresh, logout, "who am I", and a user's own password and profile.

use actix_web::{web, HttpRequest};
use chrono::Utc;
use domain::ids::{SessionId, UserId};
use domain::user::{Role, User, UserChanges, UserCommand};
use domain::values::optional_text;
use domain::Validator;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::authenticate;
use crate::api::{path_id, Body};
use crate::app::users::{new_password, update_profile, PasswordChanged};
use crate::auth::{hash_password, verify_against_dummy, verify_password, Principal, TokenKind};
use crate::error::{ok, ok_versioned, ApiError, ApiResult};
use crate::logins::{AttemptFacts, FailReason, Outcome};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/auth/login", login)
        .post("/auth/refresh", refresh)
        .post("/auth/logout", logout)
        .get("/auth/me", me)
        .patch("/auth/me", update_me)
        .post("/auth/password", change_password);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(required = true, value_type = String)]
    pub username: Option<String>,
    #[schema(required = true, value_type = String)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginUser {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: String,
    pub avatar: Option<String>,
}

/// What a successful login answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    pub user: LoginUser,
}

/// What a refresh answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

fn facts(meta: &RequestMeta) -> AttemptFacts {
    AttemptFacts {
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        request_id: meta.request_id.clone(),
    }
}

/// Records an attempt and counts it; failures are logged without the username.
async fn note_attempt(
    state: &AppState,
    username: &str,
    outcome: Outcome,
    user: Option<&str>,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    state.logins.record(username, outcome, user, &facts(meta)).await?;
    let label = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed(_) => "failed",
        Outcome::Throttled => "throttled",
    };
    crate::metrics::login(label);
    if outcome != Outcome::Succeeded {
        tracing::warn!(outcome = label, ip = %meta.ip, username_hash = %state.logins.username_hash(username), "login refused");
    }
    Ok(())
}

/// Refuses with 429 (and records it) while `username` is throttled.
async fn check_throttle(state: &AppState, username: &str, meta: &RequestMeta) -> Result<(), ApiError> {
    if let Some(retry_after) = state.logins.throttled(username).await? {
        note_attempt(state, username, Outcome::Throttled, None, meta).await?;
        return Err(crate::logins::throttled_error(retry_after));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = inline(crate::api::Envelope<LoginResponse>)),
        (status = 400, description = "username or password missing", body = crate::api::ErrorBody),
        (status = 401, description = "wrong credentials or inactive user", body = crate::api::ErrorBody),
        (status = 429, description = "too many failed logins for this username (or requests from this IP); see Retry-After", body = crate::api::ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait before trying again")))))]
pub async fn login(state: web::Data<AppState>, meta: RequestMeta, body: Body<LoginRequest>) -> ApiResult {
    let mut v = Validator::new();
    let username = super::required(&mut v, "username", &body.0.username)
        .map(|u| u.trim().to_string())
        .unwrap_or_default();
    let password = super::required(&mut v, "password", &body.0.password)
        .cloned()
        .unwrap_or_default();
    v.finish()?;
    // One attempt per username at a time, so each is counted against the last.
    let _turn = state.logins.serialize(&username).await;
    check_throttle(&state, &username, &meta).await?;
    let row = state.read.login_row(&username).await?;
    let failure = match &row {
        None => {
            // Spend the same time as a real check so usernames cannot be probed.
            verify_against_dummy(&password).await?;
            Some(FailReason::UnknownUser)
        }
        Some(row) if !verify_password(&password, &row.password_hash).await? => Some(FailReason::WrongPassword),
        Some(row) if row.status != "active" => Some(FailReason::InactiveUser),
        Some(_) => None,
    };
    let (Some(row), None) = (row, failure) else {
        let reason = failure.unwrap_or(FailReason::UnknownUser);
        note_attempt(&state, &username, Outcome::Failed(reason), None, &meta).await?;
        return Err(ApiError::Unauthorized);
    };
    let user_id: UserId = path_id(&row.id, "user")?;
    let session = SessionId::new();
    let expires_at = Utc::now() + chrono::Duration::seconds(state.jwt.refresh_ttl());
    let mut ctx = meta.context(None, "Login");
    ctx.expected_version = None;
    ctx.metadata.insert("actor_id".into(), row.id.clone());
    let cmd = UserCommand::RecordLogin {
        session_id: session,
        expires_at,
    };
    state.execute::<User>(&row.id, cmd, ctx).await.map_err(|e| match e {
        ApiError::Conflict(_) => ApiError::Unauthorized,
        other => other,
    })?;
    note_attempt(&state, &username, Outcome::Succeeded, Some(&row.id), &meta).await?;
    let user = state.read.user(&row.id).await?.ok_or(ApiError::Unauthorized)?;
    let role = Role::parse(&user.role).map_err(|_| ApiError::Unauthorized)?;
    Ok(ok(LoginResponse {
        access_token: state.jwt.issue(user_id, session, role, TokenKind::Access)?,
        refresh_token: state.jwt.issue(user_id, session, role, TokenKind::Refresh)?,
        token_type: "Bearer".into(),
        expires_in: state.settings.tokens.access_ttl_secs,
        user: LoginUser {
            id: user.id,
            username: user.username,
            name: user.name,
            role: user.role,
            avatar: user.avatar,
        },
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "send the refresh token as Bearer", body = inline(crate::api::Envelope<RefreshResponse>)),
        (status = 401, body = crate::api::ErrorBody)))]
pub async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let p = authenticate(&state, &req, TokenKind::Refresh).await?;
    let token = state.jwt.issue(p.user_id, p.session_id, p.role, TokenKind::Access)?;
    Ok(ok(RefreshResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.settings.tokens.access_ttl_secs,
    }))
}

/// `{logged_out: true}`
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    pub logged_out: bool,
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "the session (access and refresh token) is revoked", body = inline(crate::api::Envelope<LogoutResponse>)),
        (status = 401, body = crate::api::ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest, meta: RequestMeta) -> ApiResult {
    // Either token of the session may be presented.
    let p = match authenticate(&state, &req, TokenKind::Access).await {
        Ok(p) => p,
        Err(_) => authenticate(&state, &req, TokenKind::Refresh).await?,
    };
    let mut ctx = meta.context(Some(&p), "Logout");
    ctx.expected_version = None;
    state
        .execute::<User>(
            &p.user_id.to_string(),
            UserCommand::Logout {
                session_id: p.session_id,
            },
            ctx,
        )
        .await?;
    Ok(ok(LogoutResponse { logged_out: true }))
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = inline(crate::api::Envelope<projections::users::UserView>), headers(("ETag" = String, description = "the version, quoted"))),
        (status = 401, body = crate::api::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, p: Principal) -> ApiResult {
    let user = state
        .read
        .user(&p.user_id.to_string())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let version = user.version;
    Ok(crate::error::ok_versioned(user, version))
}

/// Body of `PATCH /auth/me`: what users may change about themselves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub name: Option<String>,
    /// An image URL or file URL, up to 500 characters.
    #[schema(max_length = 500)]
    pub avatar: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = UpdateMeRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::api::Envelope<projections::users::UserView>), headers(("ETag" = String, description = "the version, quoted"))),
        (status = 400, description = "names the field; unknown fields are refused", body = crate::api::ErrorBody),
        (status = 401, body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: the user cannot be changed now", body = crate::api::ErrorBody)))]
pub async fn update_me(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<UpdateMeRequest>,
) -> ApiResult {
    let mut v = Validator::new();
    let name = body
        .0
        .name
        .as_deref()
        .and_then(|n| v.check("name", domain::values::text(n, 50)));
    let avatar = v
        .check("avatar", optional_text(body.0.avatar.as_deref(), 500))
        .flatten();
    v.finish()?;
    let changes = UserChanges {
        name,
        avatar,
        ..Default::default()
    };
    let mut ctx = meta.context(Some(&p), "UpdateOwnProfile");
    ctx.expected_version = None;
    let view = update_profile(&state, p.user_id, changes, None, ctx).await?;
    let version = view.version;
    Ok(ok_versioned(view, version))
}

/// Body of `POST /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(required = true, value_type = String)]
    pub old_password: Option<String>,
    /// 8 to 128 characters, with letters and digits.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    pub new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 200, description = "changed; every other session of the user is revoked", body = inline(crate::api::Envelope<PasswordChanged>)),
        (status = 400, description = "old_password wrong, or new_password too weak", body = crate::api::ErrorBody),
        (status = 401, body = crate::api::ErrorBody),
        (status = 429, description = "too many wrong old passwords (or requests from this IP)", body = crate::api::ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait before trying again")))))]
pub async fn change_password(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<ChangePasswordRequest>,
) -> ApiResult {
    let mut v = Validator::new();
    let old = super::required(&mut v, "old_password", &body.0.old_password).cloned();
    let new = new_password(&mut v, body.0.new_password.as_ref());
    v.finish()?;
    let (Some(old), Some(new)) = (old, new) else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    let user = state
        .read
        .user(&p.user_id.to_string())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let row = state
        .read
        .login_row_by_id(&user.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // Guessing the old password through a stolen session is throttled like logins.
    let _turn = state.logins.serialize(&user.username).await;
    check_throttle(&state, &user.username, &meta).await?;
    if !verify_password(&old, &row.password_hash).await? {
        note_attempt(
            &state,
            &user.username,
            Outcome::Failed(FailReason::WrongPassword),
            None,
            &meta,
        )
        .await?;
        return Err(ApiError::field("old_password", "原密码不正确"));
    }
    let cmd = UserCommand::ChangePassword {
        password_hash: hash_password(&new).await?,
        keep_session: Some(p.session_id),
    };
    let mut ctx = meta.context(Some(&p), "ChangeOwnPassword");
    ctx.expected_version = None;
    let c = state.execute::<User>(&user.id, cmd, ctx).await?;
    Ok(ok(PasswordChanged {
        password_changed: true,
        sessions_revoked: "others".into(),
        version: c.version,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_login_response_carries_what_the_contract_names() {
        let r = super::LoginResponse {
            access_token: "a".into(),
            refresh_token: "r".into(),
            token_type: "Bearer".into(),
            expires_in: 7200,
            user: super::LoginUser {
                id: "u".into(),
                username: "n".into(),
                name: "名".into(),
                role: "admin".into(),
                avatar: None,
            },
        };
        let v = serde_json::to_value(r).unwrap();
        for k in ["access_token", "refresh_token", "token_type", "expires_in", "user"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v["user"].get("avatar").is_some());
    }
}
