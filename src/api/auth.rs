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
        .post("/auth/password", change_password)
        .post("/auth/wechat", wechat_login)
        .post("/auth/wechat/bind", wechat_bind)
        .delete("/auth/wechat/bind", wechat_unbind);
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
    note_attempt(&state, &username, Outcome::Succeeded, Some(&row.id), &meta).await?;
    start_session(&state, &row.id, &meta).await
}

/// Opens a session for a user who proved who they are (password or WeChat):
/// records `UserLoggedIn` and answers the tokens. The one way to log in.
async fn start_session(state: &AppState, user_id: &str, meta: &RequestMeta) -> ApiResult {
    let id: UserId = path_id(user_id, "user")?;
    let session = SessionId::new();
    let expires_at = Utc::now() + chrono::Duration::seconds(state.jwt.refresh_ttl());
    let mut ctx = meta.context(None, "Login");
    ctx.expected_version = None;
    ctx.metadata.insert("actor_id".into(), user_id.to_string());
    let cmd = UserCommand::RecordLogin {
        session_id: session,
        expires_at,
    };
    state.execute::<User>(user_id, cmd, ctx).await.map_err(|e| match e {
        ApiError::Conflict(_) => ApiError::Unauthorized,
        other => other,
    })?;
    let user = state.read.user(user_id).await?.ok_or(ApiError::Unauthorized)?;
    let role = Role::parse(&user.role).map_err(|_| ApiError::Unauthorized)?;
    Ok(ok(LoginResponse {
        access_token: state.jwt.issue(id, session, role, TokenKind::Access)?,
        refresh_token: state.jwt.issue(id, session, role, TokenKind::Refresh)?,
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

/// Body of the WeChat login and binding: the mini-program's `wx.login()` code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WechatCodeRequest {
    /// The login code from `wx.login()` (single use, valid 5 minutes).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    pub code: Option<String>,
}

fn wechat_code(body: &WechatCodeRequest) -> Result<String, ApiError> {
    let mut v = Validator::new();
    let code = super::required(&mut v, "code", &body.code)
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    v.finish()?;
    if code.is_empty() || code.chars().count() > 128 {
        return Err(ApiError::field("code", "应为1至128个字符的微信登录凭证"));
    }
    Ok(code)
}

#[utoipa::path(post, path = "/api/v1/auth/wechat", tag = "auth", request_body = WechatCodeRequest,
    responses((status = 200, description = "the same answer and session as `POST /auth/login`", body = inline(crate::api::Envelope<LoginResponse>)),
        (status = 400, description = "code missing or empty", body = crate::api::ErrorBody),
        (status = 401, description = "`wechat_not_bound`: no account is bound to this WeChat account; `wechat_code_invalid`: the code is wrong, used or expired; `unauthorized`: the user may not log in", body = crate::api::ErrorBody),
        (status = 404, description = "`wechat_not_configured`: WeChat login is off on this server", body = crate::api::ErrorBody),
        (status = 429, description = "too many requests from this IP", body = crate::api::ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait before trying again"))),
        (status = 502, description = "`wechat_unavailable`: WeChat did not answer", body = crate::api::ErrorBody)))]
pub async fn wechat_login(state: web::Data<AppState>, meta: RequestMeta, body: Body<WechatCodeRequest>) -> ApiResult {
    let code = wechat_code(&body.0)?;
    let (user_id, openid_hash) = match crate::app::wechat::user_for_code(&state, &code).await {
        Ok(found) => found,
        Err(e) => {
            if matches!(
                &e,
                ApiError::Coded {
                    error: "wechat_not_bound",
                    ..
                }
            ) {
                crate::metrics::login("failed");
            }
            return Err(e);
        }
    };
    // Recorded like a password login, under the username (its keyed hash).
    let user = state.read.user(&user_id).await?.ok_or(ApiError::Unauthorized)?;
    if user.status != "active" {
        note_attempt(
            &state,
            &user.username,
            Outcome::Failed(FailReason::InactiveUser),
            None,
            &meta,
        )
        .await?;
        return Err(ApiError::Unauthorized);
    }
    tracing::info!(openid_hash = %&openid_hash[..12], "WeChat login");
    note_attempt(&state, &user.username, Outcome::Succeeded, Some(&user_id), &meta).await?;
    start_session(&state, &user_id, &meta).await
}

#[utoipa::path(post, path = "/api/v1/auth/wechat/bind", tag = "auth", request_body = WechatCodeRequest, security(("bearer" = [])),
    responses((status = 200, description = "the caller's account is bound to this WeChat account (an earlier binding is replaced)", body = inline(crate::api::Envelope<crate::app::wechat::WechatBinding>)),
        (status = 400, description = "code missing or empty", body = crate::api::ErrorBody),
        (status = 401, description = "not logged in, or `wechat_code_invalid`", body = crate::api::ErrorBody),
        (status = 404, description = "`wechat_not_configured`", body = crate::api::ErrorBody),
        (status = 409, description = "`wechat_already_bound`: another account has this WeChat account", body = crate::api::ErrorBody),
        (status = 502, description = "`wechat_unavailable`: WeChat did not answer", body = crate::api::ErrorBody)))]
pub async fn wechat_bind(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<WechatCodeRequest>,
) -> ApiResult {
    let code = wechat_code(&body.0)?;
    let mut ctx = meta.context(Some(&p), "BindWechat");
    ctx.expected_version = None;
    Ok(ok(crate::app::wechat::bind(&state, &p, &code, ctx).await?))
}

#[utoipa::path(delete, path = "/api/v1/auth/wechat/bind", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "the caller's account is no longer bound to a WeChat account", body = inline(crate::api::Envelope<crate::app::wechat::WechatBinding>)),
        (status = 401, body = crate::api::ErrorBody),
        (status = 404, description = "`wechat_not_configured`", body = crate::api::ErrorBody)))]
pub async fn wechat_unbind(state: web::Data<AppState>, p: Principal, meta: RequestMeta) -> ApiResult {
    let mut ctx = meta.context(Some(&p), "UnbindWechat");
    ctx.expected_version = None;
    Ok(ok(crate::app::wechat::unbind(&state, &p, ctx).await?))
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
