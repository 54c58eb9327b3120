//! Logging in (password or WeChat, one way to open a session), and a user
//! changing their own password. Failed and throttled attempts are recorded
//! (`crate::logins`) under a keyed hash of the username.

use chrono::Utc;
use domain::ids::{SessionId, UserId};
use domain::user::{User, UserCommand, UserStatus};
use domain::Validator;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::required;
use crate::app::users::{new_password, PasswordChanged};
use crate::auth::{hash_password, verify_against_dummy, verify_password, Principal, TokenKind};
use crate::logins::{AttemptFacts, FailReason, Outcome};
use crate::state::{AppState, RequestMeta};

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

/// Body of the WeChat login and binding: the mini-program's `wx.login()` code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WechatCodeRequest {
    /// The login code from `wx.login()` (single use, valid 5 minutes).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    pub code: Option<String>,
}

impl WechatCodeRequest {
    /// The code, trimmed (400 naming `code`).
    pub fn parse(&self) -> Result<String, AppError> {
        let body = self;
        let mut v = Validator::new();
        let code = required(&mut v, "code", &body.code)
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        v.finish()?;
        if code.is_empty() || code.chars().count() > 128 {
            return Err(AppError::field("code", "应为1至128个字符的微信登录凭证"));
        }
        Ok(code)
    }
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
) -> Result<(), AppError> {
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
async fn check_throttle(state: &AppState, username: &str, meta: &RequestMeta) -> Result<(), AppError> {
    if let Some(retry_after) = state.logins.throttled(username).await? {
        note_attempt(state, username, Outcome::Throttled, None, meta).await?;
        return Err(crate::logins::throttled_error(retry_after));
    }
    Ok(())
}

/// Logs in with a username and password.
pub async fn with_password(
    state: &AppState,
    meta: &RequestMeta,
    input: &LoginRequest,
) -> Result<LoginResponse, AppError> {
    let mut v = Validator::new();
    let username = required(&mut v, "username", &input.username)
        .map(|u| u.trim().to_string())
        .unwrap_or_default();
    let password = required(&mut v, "password", &input.password)
        .cloned()
        .unwrap_or_default();
    v.finish()?;
    // One attempt per username at a time, so each is counted against the last.
    let _turn = state.logins.serialize(&username).await;
    check_throttle(state, &username, meta).await?;
    let row = state.read().await.users().login_row(&username).await?;
    let failure = match &row {
        None => {
            // Spend the same time as a real check so usernames cannot be probed.
            verify_against_dummy(&password).await?;
            Some(FailReason::UnknownUser)
        }
        Some(row) if !verify_password(&password, &row.password_hash).await? => Some(FailReason::WrongPassword),
        Some(row) if row.status != UserStatus::Active => Some(FailReason::InactiveUser),
        Some(_) => None,
    };
    let (Some(row), None) = (row, failure) else {
        let reason = failure.unwrap_or(FailReason::UnknownUser);
        note_attempt(state, &username, Outcome::Failed(reason), None, meta).await?;
        return Err(AppError::Unauthorized);
    };
    note_attempt(state, &username, Outcome::Succeeded, Some(&row.id.to_string()), meta).await?;
    start_session(state, row.id, meta).await
}

/// Logs in the user bound to the WeChat account of a `wx.login()` code.
pub async fn with_wechat(
    state: &AppState,
    meta: &RequestMeta,
    input: &WechatCodeRequest,
) -> Result<LoginResponse, AppError> {
    let code = input.parse()?;
    let (user_id, openid_hash) = match crate::app::wechat::user_for_code(state, &code).await {
        Ok(found) => found,
        Err(e) => {
            if matches!(e, AppError::Wechat(crate::app::refusal::WechatRefusal::NotBound)) {
                crate::metrics::login("failed");
            }
            return Err(e);
        }
    };
    // Recorded like a password login, under the username (its keyed hash).
    let user = state
        .read()
        .await
        .users()
        .get(user_id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if user.status != UserStatus::Active {
        note_attempt(
            state,
            &user.username,
            Outcome::Failed(FailReason::InactiveUser),
            None,
            meta,
        )
        .await?;
        return Err(AppError::Unauthorized);
    }
    tracing::info!(openid_hash = %&openid_hash[..12], "WeChat login");
    note_attempt(
        state,
        &user.username,
        Outcome::Succeeded,
        Some(&user_id.to_string()),
        meta,
    )
    .await?;
    start_session(state, user.id, meta).await
}

/// Opens a session for a user who proved who they are (password or WeChat):
/// records `UserLoggedIn` and answers the tokens. The one way to log in.
async fn start_session(state: &AppState, id: UserId, meta: &RequestMeta) -> Result<LoginResponse, AppError> {
    let user_id = id.to_string();
    let session = SessionId::new();
    let expires_at = Utc::now() + chrono::Duration::seconds(state.jwt.refresh_ttl());
    let mut ctx = meta.context(None, "Login");
    ctx.expected_version = None;
    ctx.metadata.insert("actor_id".into(), user_id.to_string());
    let cmd = UserCommand::RecordLogin {
        session_id: session,
        expires_at,
    };
    state.execute::<User>(&user_id, cmd, ctx).await.map_err(|e| match e {
        e if e.is_refusal() => AppError::Unauthorized,
        other => other,
    })?;
    let user = state
        .read()
        .await
        .users()
        .get(id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let role = user.role;
    Ok(LoginResponse {
        access_token: state.jwt.issue(id, session, role, TokenKind::Access)?,
        refresh_token: state.jwt.issue(id, session, role, TokenKind::Refresh)?,
        token_type: "Bearer".into(),
        expires_in: state.settings.tokens.access_ttl_secs,
        user: LoginUser {
            id: user.id.to_string(),
            username: user.username,
            name: user.name,
            role: user.role.as_str().to_string(),
            avatar: user.avatar,
        },
    })
}

/// User `p` changes their own password; their other sessions are revoked.
pub async fn change_password(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &ChangePasswordRequest,
) -> Result<PasswordChanged, AppError> {
    let mut v = Validator::new();
    let old = required(&mut v, "old_password", &input.old_password).cloned();
    let new = new_password(&mut v, input.new_password.as_ref());
    v.finish()?;
    let (Some(old), Some(new)) = (old, new) else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    let user = crate::app::users::own_user(state, p).await?;
    let row = state
        .read()
        .await
        .users()
        .login_row_by_id(user.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    // Guessing the old password through a stolen session is throttled like logins.
    let _turn = state.logins.serialize(&user.username).await;
    check_throttle(state, &user.username, meta).await?;
    if !verify_password(&old, &row.password_hash).await? {
        note_attempt(
            state,
            &user.username,
            Outcome::Failed(FailReason::WrongPassword),
            None,
            meta,
        )
        .await?;
        return Err(AppError::field("old_password", "原密码不正确"));
    }
    let cmd = UserCommand::ChangePassword {
        password_hash: hash_password(&new).await?,
        keep_session: Some(p.session_id),
    };
    let mut ctx = meta.context(Some(p), "ChangeOwnPassword");
    ctx.expected_version = None;
    let c = state.execute::<User>(&user.id.to_string(), cmd, ctx).await?;
    Ok(PasswordChanged {
        password_changed: true,
        sessions_revoked: "others".into(),
        version: c.version,
    })
}

/// Ends the caller's session: its access and refresh tokens stop working.
pub async fn logout(state: &AppState, p: &Principal, meta: &RequestMeta) -> Result<(), AppError> {
    let mut ctx = meta.context(Some(p), "Logout");
    ctx.expected_version = None;
    let cmd = UserCommand::Logout {
        session_id: p.session_id,
    };
    state.execute::<User>(&p.user_id.to_string(), cmd, ctx).await?;
    Ok(())
}
