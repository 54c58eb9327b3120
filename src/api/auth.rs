//! Login, token refresh, logout and "who am I".

use actix_web::{web, HttpRequest};
use chrono::Utc;
use domain::ids::{SessionId, UserId};
use domain::user::{Role, User, UserCommand};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::api::{path_id, Body};
use crate::auth::{authenticate, dummy_hash, verify_password, Principal, TokenKind};
use crate::error::{ok, ApiError, ApiResult};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me));
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: Option<String>,
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

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "{access_token, refresh_token, user}"), (status = 401, description = "wrong credentials or inactive user")))]
pub async fn login(state: web::Data<AppState>, meta: RequestMeta, body: Body<LoginRequest>) -> ApiResult {
    let mut v = domain::Validator::new();
    let username = super::required(&mut v, "username", &body.0.username)
        .cloned()
        .unwrap_or_default();
    let password = super::required(&mut v, "password", &body.0.password)
        .cloned()
        .unwrap_or_default();
    v.finish()?;
    let row = state.read.login_row(username.trim()).await?;
    let Some(row) = row else {
        // Spend the same time as a real check so usernames cannot be probed.
        verify_password(&password, dummy_hash());
        return Err(ApiError::Unauthorized);
    };
    if !verify_password(&password, &row.password_hash) || row.status != "active" {
        return Err(ApiError::Unauthorized);
    }
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
    let user = state.read.user(&row.id).await?.ok_or(ApiError::Unauthorized)?;
    let role = Role::parse(&user.role).map_err(|_| ApiError::Unauthorized)?;
    Ok(ok(json!({
        "access_token": state.jwt.issue(user_id, session, role, TokenKind::Access)?,
        "refresh_token": state.jwt.issue(user_id, session, role, TokenKind::Refresh)?,
        "token_type": "Bearer",
        "expires_in": state.settings.access_ttl_secs,
        "user": LoginUser { id: user.id, username: user.username, name: user.name, role: user.role, avatar: user.avatar },
    })))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "{access_token} (send the refresh token as Bearer)"), (status = 401)))]
pub async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let p = authenticate(&state, &req, TokenKind::Refresh).await?;
    let token = state.jwt.issue(p.user_id, p.session_id, p.role, TokenKind::Access)?;
    Ok(ok(
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": state.settings.access_ttl_secs }),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "the session (access and refresh token) is revoked")))]
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
    Ok(ok(json!({ "logged_out": true })))
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = projections::users::UserView)))]
pub async fn me(state: web::Data<AppState>, p: Principal) -> ApiResult {
    let user = state
        .read
        .user(&p.user_id.to_string())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let version = user.version;
    Ok(crate::error::ok_versioned(user, version))
}
