//! Login, token refresh, logout, "who am I", and a user's own password and profile.

use actix_web::{web, HttpRequest};
use domain::user::UserChanges;
use domain::values::optional_text;
use domain::Validator;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::{ok, ok_versioned, ApiResult};
use crate::api::extract::authenticate;
use crate::api::Body;
use crate::app::login;
pub use crate::app::login::{ChangePasswordRequest, LoginRequest, LoginResponse, LoginUser, WechatCodeRequest};
use crate::app::users::{update_profile, PasswordChanged};
use crate::auth::{Principal, TokenKind};
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

/// What a refresh answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = inline(crate::api::Envelope<LoginResponse>)),
        (status = 400, description = "username or password missing", body = crate::api::ErrorBody),
        (status = 401, description = "wrong credentials or inactive user", body = crate::api::ErrorBody),
        (status = 429, description = "too many failed logins for this username (or requests from this IP); see Retry-After", body = crate::api::ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait before trying again")))))]
pub async fn login(state: web::Data<AppState>, meta: RequestMeta, body: Body<LoginRequest>) -> ApiResult {
    Ok(ok(login::with_password(&state, &meta, &body.0).await?))
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
    Ok(ok(login::with_wechat(&state, &meta, &body.0).await?))
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
    let code = body.0.parse()?;
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
    crate::app::login::logout(&state, &p, &meta).await?;
    Ok(ok(LogoutResponse { logged_out: true }))
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = inline(crate::api::Envelope<projections::users::UserView>), headers(("ETag" = String, description = "the version, quoted"))),
        (status = 401, body = crate::api::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, p: Principal) -> ApiResult {
    let user = crate::app::users::own_user(&state, &p).await?;
    let version = user.version;
    Ok(crate::api::error::ok_versioned(user, version))
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
    Ok(ok(login::change_password(&state, &p, &meta, &body.0).await?))
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
