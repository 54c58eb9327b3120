//! WeChat login and binding: a mini-program login code → the openid
//! (`code2session`) → the user bound to it.
//!
//! One openid is bound to one user at most: binding first claims the openid's
//! keyed hash for the user in `unique_claims` (the primary key is the
//! invariant, so two users binding one openid at once cannot both win), then
//! records `WechatBound` on the user. The openid itself lives only in that
//! event, sealed by `src/privacy` under the user's key; the login looks the
//! user up by the hash in the `wechat_bindings` read model.
//!
//! Limit: a process dying between the claim and the event leaves the openid
//! claimed by the user without a binding: that user can still bind it, no
//! other user can until an operator deletes the claim.

use domain::ids::UserId;
use domain::user::{User, UserCommand};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::refusal::WechatRefusal;
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::CommandContext;
use crate::wechat::{mask, WechatClient, WechatError};

/// The claim scope of openid hashes.
const CLAIM_SCOPE: &str = "wechat_openid";

fn client(state: &AppState) -> Result<&WechatClient, AppError> {
    state
        .wechat
        .as_deref()
        .ok_or(AppError::Wechat(WechatRefusal::NotConfigured))
}

/// The user a login code's WeChat account is bound to, and the openid hash
/// (for the login record). 404 when WeChat is off, 401 `wechat_code_invalid`
/// or `wechat_not_bound`, 502 when WeChat fails.
pub async fn user_for_code(state: &AppState, code: &str) -> Result<(UserId, String), AppError> {
    let wechat = client(state)?;
    let session = match wechat.code2session(code).await {
        Ok(s) => s,
        Err(WechatError::InvalidCode(errcode)) => {
            tracing::info!(errcode, "WeChat login code refused");
            return Err(WechatRefusal::CodeInvalid.into());
        }
        Err(e) => {
            tracing::warn!(error = %e, "WeChat code2session failed");
            return Err(WechatRefusal::Unavailable.into());
        }
    };
    let hash = wechat.hash(&session.openid);
    match state.read().await.wechat().user(&hash).await? {
        Some(user) => Ok((user, hash)),
        None => {
            tracing::info!(openid = %mask(&session.openid), "WeChat login of an unbound account");
            Err(WechatRefusal::NotBound.into())
        }
    }
}

/// What binding and unbinding answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WechatBinding {
    /// Whether the caller's account is bound to a WeChat account now.
    pub bound: bool,
    /// The user's version after the change.
    pub version: i64,
}

/// Binds the caller's account to the WeChat account of `code` (replacing an
/// earlier binding). 409 `wechat_already_bound` when another user has it.
pub async fn bind(state: &AppState, p: &Principal, code: &str, ctx: CommandContext) -> Result<WechatBinding, AppError> {
    let wechat = client(state)?;
    let session = match wechat.code2session(code).await {
        Ok(s) => s,
        Err(WechatError::InvalidCode(_)) => return Err(WechatRefusal::CodeInvalid.into()),
        Err(e) => {
            tracing::warn!(error = %e, "WeChat code2session failed");
            return Err(WechatRefusal::Unavailable.into());
        }
    };
    let hash = wechat.hash(&session.openid);
    let owner = p.user_id.to_string();
    if !state.store.claim(CLAIM_SCOPE, &hash, &owner).await? {
        return Err(WechatRefusal::AlreadyBound.into());
    }
    let previous = bound_hash(state, &owner).await?;
    let cmd = UserCommand::BindWechat {
        openid_hash: hash.clone(),
        openid: session.openid,
    };
    match state.execute::<User>(&owner, cmd, ctx).await {
        Ok(c) => {
            if let Some(old) = previous.filter(|old| *old != hash) {
                state.store.release(CLAIM_SCOPE, &old, &owner).await?;
            }
            Ok(WechatBinding {
                bound: true,
                version: c.version,
            })
        }
        Err(e) => {
            if previous.as_deref() != Some(hash.as_str()) {
                state.store.release(CLAIM_SCOPE, &hash, &owner).await?;
            }
            Err(e)
        }
    }
}

/// Ends the caller's WeChat binding (nothing when there is none).
pub async fn unbind(state: &AppState, p: &Principal, ctx: CommandContext) -> Result<WechatBinding, AppError> {
    client(state)?;
    let owner = p.user_id.to_string();
    let previous = bound_hash(state, &owner).await?;
    let c = state.execute::<User>(&owner, UserCommand::UnbindWechat, ctx).await?;
    if let Some(old) = previous {
        state.store.release(CLAIM_SCOPE, &old, &owner).await?;
    }
    Ok(WechatBinding {
        bound: false,
        version: c.version,
    })
}

/// The openid hash the user is bound to now.
async fn bound_hash(state: &AppState, user: &str) -> Result<Option<String>, AppError> {
    Ok(state
        .store
        .load::<User>(user)
        .await?
        .and_then(|(u, _)| u.wechat)
        .map(|w| w.openid_hash))
}

/// The openid of a user, for sending them a message (`None`: not bound).
pub async fn openid_of(state: &AppState, user: &str) -> Result<Option<String>, AppError> {
    Ok(state
        .store
        .load::<User>(user)
        .await?
        .and_then(|(u, _)| u.wechat)
        .map(|w| w.openid))
}
