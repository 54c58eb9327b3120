//! Staff accounts: profile changes (shared by `PATCH /users/{id}` and
//! `PATCH /auth/me`) and the password rule (shared by the self-service change
//! and the admin reset).

use domain::ids::UserId;
use domain::user::{User, UserChanges, UserCommand};
use domain::Validator;
use projections::users::UserView;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::CommandContext;

/// A new password (`POST /auth/password`, `POST /users/{id}/password`): 8 to
/// 128 characters with at least one letter and one digit. Missing or weak is
/// recorded against `new_password`.
pub fn new_password(v: &mut Validator, password: Option<&String>) -> Option<String> {
    let Some(p) = password else {
        v.add("new_password", "必填");
        return None;
    };
    let n = p.chars().count();
    let letters = p.chars().any(|c| c.is_alphabetic());
    let digits = p.chars().any(|c| c.is_ascii_digit());
    if !(8..=128).contains(&n) || !letters || !digits {
        v.add("new_password", "密码应为8到128个字符，且同时包含字母和数字");
        return None;
    }
    Some(p.clone())
}

/// `{password_changed: true, sessions_revoked}`
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    pub password_changed: bool,
    /// `others` (your own password: this session stays) or `all` (an admin reset).
    pub sessions_revoked: String,
    pub version: i64,
}

/// Applies profile changes to a user; a new phone number is claimed first
/// (unique across users) and the old one released after. Shared by
/// `PATCH /users/{id}` and `PATCH /auth/me`. Answers the user as it is now.
pub async fn update_profile(
    state: &AppState,
    user: UserId,
    changes: UserChanges,
    current_phone: Option<String>,
    ctx: CommandContext,
) -> Result<UserView, ApiError> {
    let owner = user.to_string();
    let new_phone = changes
        .phone
        .as_ref()
        .map(|p| p.as_str().to_string())
        .filter(|p| current_phone.as_deref() != Some(p.as_str()));
    if let Some(phone) = &new_phone {
        if !state.store.claim("phone", phone, &owner).await? {
            return Err(ApiError::Conflict("手机号已被使用".into()));
        }
    }
    let result = state
        .execute::<User>(&owner, UserCommand::UpdateProfile(changes), ctx)
        .await;
    match (&result, &new_phone, &current_phone) {
        (Err(_), Some(phone), _) => state.store.release("phone", phone, &owner).await?,
        (Ok(_), Some(_), Some(old)) => state.store.release("phone", old, &owner).await?,
        _ => {}
    }
    result?;
    state.read.user(&owner).await?.ok_or(ApiError::NotFound("user"))
}
