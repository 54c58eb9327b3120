//! Staff accounts: creation (unique username, phone, employee id and
//! license number, claimed before the account is created), profile changes (shared by `PATCH /users/{id}` and
//! `PATCH /auth/me`) and the password rule (shared by the self-service change
//! and the admin reset).

use domain::ids::UserId;
use domain::user::{DoctorProfile, NewUser, RecorderProfile, Role, User, UserChanges, UserCommand, UserStatus};
use domain::values::{date, optional_text, text, PhoneNumber};
use domain::Validator;
use projections::users::UserView;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::required;
use crate::app::refusal::{Refusal, Unique};
use crate::app::saga::Saga;
use crate::app::StatusChanged;
use crate::auth::hash_password;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};
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
) -> Result<UserView, AppError> {
    let owner = user.to_string();
    let new_phone = changes
        .phone
        .as_ref()
        .map(|p| p.as_str().to_string())
        .filter(|p| current_phone.as_deref() != Some(p.as_str()));
    if let Some(phone) = &new_phone {
        if !state.store.claim("phone", phone, &owner).await? {
            return Err(Refusal::Taken(Unique::Phone).into());
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
    user_view(state, user).await
}

/// A user as the read models show them (once they show the caller's writes).
pub async fn user_view(state: &AppState, id: UserId) -> Result<UserView, AppError> {
    state
        .read()
        .await
        .users()
        .get(id)
        .await?
        .ok_or(AppError::NotFound("user"))
}

/// The caller's own user: gone means their session no longer stands (401).
pub async fn own_user(state: &AppState, p: &Principal) -> Result<UserView, AppError> {
    match user_view(state, p.user_id).await {
        Err(AppError::NotFound(_)) => Err(AppError::Unauthorized),
        other => other,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RecorderInput {
    /// Up to 64 characters, unique across recorders.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64)]
    pub employee_id: Option<String>,
    pub qualification_cert: Option<String>,
    pub health_cert: Option<String>,
    /// `YYYY-MM-DD`.
    pub cert_expiry_date: Option<String>,
    pub work_area: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DoctorInput {
    /// Up to 64 characters, unique across doctors.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64)]
    pub license_number: Option<String>,
    /// Up to 100 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub specialty: Option<String>,
    pub hospital: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    /// Yuan, not negative, as a number or a decimal string.
    #[schema(value_type = Option<crate::app::input::MoneyInput>)]
    pub consultation_fee: Option<Decimal>,
}

/// Body of `POST /users`; the profile matching the role is required.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    /// 3 to 64 characters, no white space; unique (case-insensitive).
    #[schema(required = true, value_type = String, min_length = 3, max_length = 64)]
    pub username: Option<String>,
    /// A mobile (11 digits, optionally +86) or landline (0xx-xxxxxxxx) number; unique.
    #[schema(required = true, value_type = String)]
    pub phone: Option<String>,
    /// 8 to 128 characters.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    #[schema(required = true, value_type = String, pattern = "^(admin|recorder|doctor|auditor)$")]
    pub role: Option<String>,
    /// 1 to 50 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50)]
    pub name: Option<String>,
    /// Up to 500 characters.
    pub avatar: Option<String>,
    /// Required for role `recorder`.
    pub recorder: Option<RecorderInput>,
    /// Required for role `doctor`.
    pub doctor: Option<DoctorInput>,
}

/// An initial password: 8 to 128 characters (recorded against `password`).
pub fn validate_password(v: &mut Validator, password: Option<&String>) -> Option<String> {
    let p = password?;
    if p.chars().count() < 8 || p.chars().count() > 128 {
        v.add("password", "密码长度应为8到128个字符");
        return None;
    }
    Some(p.clone())
}

impl CreateUserRequest {
    /// Validates the request into a user and its password (not yet hashed).
    pub fn parse(&self) -> Result<(NewUser, String), AppError> {
        let r = self;
        let mut v = Validator::new();
        let username = required(&mut v, "username", &r.username).and_then(|u| {
            let ok = (3..=64).contains(&u.chars().count()) && !u.chars().any(char::is_whitespace);
            v.check(
                "username",
                if ok {
                    Ok(u.clone())
                } else {
                    Err("用户名应为3到64个非空白字符".to_string())
                },
            )
        });
        let phone = required(&mut v, "phone", &r.phone).and_then(|p| v.check("phone", PhoneNumber::parse(p)));
        let raw_password = required(&mut v, "password", &r.password);
        let password = validate_password(&mut v, raw_password);
        let role = required(&mut v, "role", &r.role).and_then(|x| v.check("role", Role::parse(x)));
        let name = required(&mut v, "name", &r.name).and_then(|n| v.check("name", text(n, 50)));
        let avatar = v.check("avatar", optional_text(r.avatar.as_deref(), 500)).flatten();
        let recorder = match (&r.recorder, role) {
            (Some(rec), Some(Role::Recorder)) => {
                let employee_id = required(&mut v, "recorder.employee_id", &rec.employee_id)
                    .and_then(|e| v.check("recorder.employee_id", text(e, 64)));
                let cert_expiry_date = match rec.cert_expiry_date.as_deref() {
                    None | Some("") => None,
                    Some(d) => v.check("recorder.cert_expiry_date", date(d)),
                };
                employee_id.map(|employee_id| RecorderProfile {
                    employee_id,
                    qualification_cert: rec.qualification_cert.clone(),
                    health_cert: rec.health_cert.clone(),
                    cert_expiry_date,
                    work_area: rec.work_area.clone(),
                })
            }
            (None, Some(Role::Recorder)) => {
                v.add("recorder", "记录员必须提供recorder资料");
                None
            }
            _ => None,
        };
        let doctor = match (&r.doctor, role) {
            (Some(d), Some(Role::Doctor)) => {
                let license = required(&mut v, "doctor.license_number", &d.license_number)
                    .and_then(|l| v.check("doctor.license_number", text(l, 64)));
                let specialty = required(&mut v, "doctor.specialty", &d.specialty)
                    .and_then(|s| v.check("doctor.specialty", text(s, 100)));
                if d.consultation_fee.is_some_and(|f| f < Decimal::ZERO) {
                    v.add("doctor.consultation_fee", "不能为负数");
                }
                license.zip(specialty).map(|(license_number, specialty)| DoctorProfile {
                    license_number,
                    specialty,
                    hospital: d.hospital.clone(),
                    department: d.department.clone(),
                    title: d.title.clone(),
                    consultation_fee: d.consultation_fee,
                })
            }
            (None, Some(Role::Doctor)) => {
                v.add("doctor", "医生必须提供doctor资料");
                None
            }
            _ => None,
        };
        v.finish()?;
        let (Some(username), Some(phone), Some(password), Some(role), Some(name)) =
            (username, phone, password, role, name)
        else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok((
            NewUser {
                username,
                phone,
                password_hash: String::new(),
                role,
                name,
                avatar,
                recorder,
                doctor,
            },
            password,
        ))
    }
}

/// Creates a user, enforcing unique username, phone, employee id and license
/// number across all users. Shared by the API and `carelog create-admin`.
pub async fn create(
    state: &AppState,
    mut user: NewUser,
    password: &str,
    ctx: crate::store::CommandContext,
) -> Result<UserId, AppError> {
    user.password_hash = hash_password(password).await?;
    let id = UserId::new();
    let owner = id.to_string();
    let mut claims: Vec<(Unique, String)> = vec![
        (Unique::Username, user.username.to_lowercase()),
        (Unique::Phone, user.phone.as_str().to_string()),
    ];
    if let Some(r) = &user.recorder {
        claims.push((Unique::EmployeeId, r.employee_id.clone()));
    }
    if let Some(d) = &user.doctor {
        claims.push((Unique::LicenseNumber, d.license_number.clone()));
    }
    let mut saga = Saga::new();
    for (unique, value) in claims {
        let scope = unique.scope();
        if !state.store.claim(scope, &value, &owner).await? {
            return saga.fail(Refusal::Taken(unique).into()).await;
        }
        let owner = &owner;
        saga.done("claim a unique value", async move {
            Ok(state.store.release(scope, &value, owner).await?)
        });
    }
    if let Err(e) = state.execute::<User>(&owner, UserCommand::Create(user), ctx).await {
        return saga.fail(e).await;
    }
    saga.commit();
    Ok(id)
}

/// An admin activates, deactivates or suspends an account (never their own
/// out of service); a suspended user's tokens stop working at once.
pub async fn change_status(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: UserId,
    status: UserStatus,
) -> Result<StatusChanged, AppError> {
    if id == p.user_id && status != UserStatus::Active {
        return Err(Refusal::OwnAccount.into());
    }
    let c = state
        .execute::<User>(
            &id.to_string(),
            UserCommand::ChangeStatus { status },
            meta.context(Some(p), "ChangeUserStatus"),
        )
        .await?;
    Ok(StatusChanged {
        id: id.to_string(),
        status: status.as_str().to_string(),
        version: c.version,
    })
}

/// An admin sets a user's password; every session of the user is revoked.
pub async fn reset_password(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: UserId,
    password: &str,
) -> Result<PasswordChanged, AppError> {
    let cmd = UserCommand::ChangePassword {
        password_hash: hash_password(password).await?,
        keep_session: None,
    };
    let mut ctx = meta.context(Some(p), "ResetPassword");
    ctx.expected_version = None;
    let c = state.execute::<User>(&id.to_string(), cmd, ctx).await?;
    Ok(PasswordChanged {
        password_changed: true,
        sessions_revoked: "all".into(),
        version: c.version,
    })
}
