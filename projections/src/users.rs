//! Users, their recorder/doctor profiles, and login sessions.

use async_trait::async_trait;
use domain::ids::{SessionId, UserId};
use domain::user::{Role, UserEvent, UserStatus};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::store::{ReadStore, RowExt};

pub struct UsersProjector;

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        "users"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["sessions", "recorders", "doctors", "users"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != "user" {
            return Ok(());
        }
        let id = e.aggregate_id.as_str();
        let at = e.at();
        match e.decode::<UserEvent>()? {
            UserEvent::UserCreated(u) => {
                sqlx::query(
                    "INSERT INTO users (id, username, phone, role, name, avatar, status, password_hash, created_at, updated_at, version)
                     VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(&u.username)
                .bind(u.phone.as_str())
                .bind(u.role.as_str())
                .bind(&u.name)
                .bind(&u.avatar)
                .bind(&u.password_hash)
                .bind(&at)
                .bind(&at)
                .bind(e.sequence)
                .execute(&mut *c)
                .await?;
                if let Some(r) = &u.recorder {
                    sqlx::query(
                        "INSERT INTO recorders (user_id, employee_id, qualification_cert, health_cert, cert_expiry_date, work_area)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(&r.employee_id)
                    .bind(&r.qualification_cert)
                    .bind(&r.health_cert)
                    .bind(r.cert_expiry_date.map(|d| d.to_string()))
                    .bind(&r.work_area)
                    .execute(&mut *c)
                    .await?;
                }
                if let Some(d) = &u.doctor {
                    sqlx::query(
                        "INSERT INTO doctors (user_id, license_number, specialty, hospital, department, title, consultation_fee)
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(&d.license_number)
                    .bind(&d.specialty)
                    .bind(&d.hospital)
                    .bind(&d.department)
                    .bind(&d.title)
                    .bind(d.consultation_fee.map(|f| f.to_string()))
                    .execute(&mut *c)
                    .await?;
                }
                return Ok(());
            }
            UserEvent::UserStatusChanged { status, .. } => {
                sqlx::query("UPDATE users SET status = ? WHERE id = ?")
                    .bind(status.as_str())
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                if status != UserStatus::Active {
                    revoke_all(c, id, &at).await?;
                }
            }
            UserEvent::UserPasswordChanged {
                password_hash,
                kept_session,
            } => {
                sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                    .bind(&password_hash)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                // Every session ends but the one kept (the caller's own, when
                // they changed their password themselves).
                let revoke = "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL";
                match kept_session {
                    Some(kept) => {
                        sqlx::query(&format!("{revoke} AND id <> ?"))
                            .bind(&at)
                            .bind(id)
                            .bind(kept.to_string())
                            .execute(&mut *c)
                            .await?
                    }
                    None => sqlx::query(revoke).bind(&at).bind(id).execute(&mut *c).await?,
                };
            }
            UserEvent::UserProfileUpdated(ch) => {
                sqlx::query(
                    "UPDATE users SET name = COALESCE(?, name), phone = COALESCE(?, phone), avatar = COALESCE(?, avatar)
                     WHERE id = ?",
                )
                .bind(&ch.name)
                .bind(ch.phone.as_ref().map(|p| p.as_str().to_string()))
                .bind(&ch.avatar)
                .bind(id)
                .execute(&mut *c)
                .await?;
                if let Some(r) = &ch.recorder {
                    sqlx::query(
                        "UPDATE recorders SET qualification_cert = COALESCE(?, qualification_cert),
                            health_cert = COALESCE(?, health_cert), cert_expiry_date = COALESCE(?, cert_expiry_date),
                            work_area = COALESCE(?, work_area), is_on_duty = COALESCE(?, is_on_duty)
                         WHERE user_id = ?",
                    )
                    .bind(&r.qualification_cert)
                    .bind(&r.health_cert)
                    .bind(r.cert_expiry_date.map(|d| d.to_string()))
                    .bind(&r.work_area)
                    .bind(r.is_on_duty.map(i64::from))
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                }
                if let Some(d) = &ch.doctor {
                    sqlx::query(
                        "UPDATE doctors SET specialty = COALESCE(?, specialty), title = COALESCE(?, title),
                            hospital = COALESCE(?, hospital), department = COALESCE(?, department),
                            consultation_fee = COALESCE(?, consultation_fee), is_available = COALESCE(?, is_available)
                         WHERE user_id = ?",
                    )
                    .bind(&d.specialty)
                    .bind(&d.title)
                    .bind(&d.hospital)
                    .bind(&d.department)
                    .bind(d.consultation_fee.map(|f| f.to_string()))
                    .bind(d.is_available.map(i64::from))
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                }
            }
            UserEvent::UserLoggedIn { session_id, expires_at } => {
                sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
                    .bind(session_id.to_string())
                    .bind(id)
                    .bind(&at)
                    .bind(crate::store::instant(expires_at))
                    .execute(&mut *c)
                    .await?;
                sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
                    .bind(&at)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            UserEvent::UserLoggedOut { session_id } => {
                sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                    .bind(&at)
                    .bind(session_id.to_string())
                    .execute(&mut *c)
                    .await?;
            }
            // The WeChat read model keeps bindings (by the openid's keyed hash).
            UserEvent::WechatBound { .. } | UserEvent::WechatUnbound { .. } => {}
        }
        sqlx::query("UPDATE users SET updated_at = ?, version = ? WHERE id = ?")
            .bind(&at)
            .bind(e.sequence)
            .bind(id)
            .execute(&mut *c)
            .await?;
        Ok(())
    }
}

async fn revoke_all(c: &mut AnyConnection, user_id: &str, at: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
        .bind(at)
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// What login needs to check a password.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub id: UserId,
    pub status: UserStatus,
    pub password_hash: String,
}

/// What every authenticated request checks: the session and its user.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub user_id: UserId,
    pub role: Role,
    pub user_status: UserStatus,
    pub revoked: bool,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecorderProfileView {
    pub employee_id: String,
    pub qualification_cert: Option<String>,
    pub health_cert: Option<String>,
    pub cert_expiry_date: Option<String>,
    pub work_area: Option<String>,
    /// Whether the recorder is working (off duty: no new subscriptions or visits).
    pub is_on_duty: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DoctorProfileView {
    pub license_number: String,
    pub specialty: String,
    pub hospital: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    /// Decimal string, yuan.
    pub consultation_fee: Option<String>,
    /// Whether the doctor takes new order requests and alerts.
    pub is_available: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    pub username: String,
    pub phone: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub name: String,
    pub avatar: Option<String>,
    #[schema(value_type = String)]
    pub status: UserStatus,
    pub last_login_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder: Option<RecorderProfileView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doctor: Option<DoctorProfileView>,
}

const USER_SELECT: &str = "SELECT u.id, u.username, u.phone, u.role, u.name, u.avatar, u.status, u.last_login_at,
        u.created_at, u.updated_at, u.version,
        r.employee_id, r.qualification_cert, r.health_cert, r.cert_expiry_date, r.work_area, r.is_on_duty,
        d.license_number, d.specialty, d.hospital, d.department, d.title, d.consultation_fee, d.is_available
    FROM users u
    LEFT JOIN recorders r ON r.user_id = u.id
    LEFT JOIN doctors d ON d.user_id = u.id";

fn user_view(r: &AnyRow) -> Result<UserView, sqlx::Error> {
    let recorder = match r.opt_text("employee_id")? {
        Some(employee_id) => Some(RecorderProfileView {
            employee_id,
            qualification_cert: r.opt_text("qualification_cert")?,
            health_cert: r.opt_text("health_cert")?,
            cert_expiry_date: r.opt_text("cert_expiry_date")?,
            work_area: r.opt_text("work_area")?,
            is_on_duty: r.opt_int("is_on_duty")?.unwrap_or(1) != 0,
        }),
        None => None,
    };
    let doctor = match r.opt_text("license_number")? {
        Some(license_number) => Some(DoctorProfileView {
            license_number,
            specialty: r.text("specialty")?,
            hospital: r.opt_text("hospital")?,
            department: r.opt_text("department")?,
            title: r.opt_text("title")?,
            consultation_fee: r.opt_text("consultation_fee")?,
            is_available: r.opt_int("is_available")?.unwrap_or(1) != 0,
        }),
        None => None,
    };
    Ok(UserView {
        id: r.id("id")?,
        username: r.text("username")?,
        phone: r.text("phone")?,
        role: r.status("role")?,
        name: r.text("name")?,
        avatar: r.opt_text("avatar")?,
        status: r.status("status")?,
        last_login_at: r.opt_text("last_login_at")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
        recorder,
        doctor,
    })
}

impl ReadStore {
    /// The users read model (with profiles and sessions).
    pub fn users(&self) -> Users<'_> {
        Users(self)
    }
}

/// Queries of the users read model.
#[derive(Clone, Copy)]
pub struct Users<'a>(&'a ReadStore);

impl Users<'_> {
    /// What login checks, by username.
    pub async fn login_row(self, username: &str) -> Result<Option<LoginRow>, sqlx::Error> {
        self.login_row_where("username", username).await
    }

    /// The same facts for a known user (password changes).
    pub async fn login_row_by_id(self, user_id: UserId) -> Result<Option<LoginRow>, sqlx::Error> {
        self.login_row_where("id", &user_id.to_string()).await
    }

    async fn login_row_where(self, column: &str, value: &str) -> Result<Option<LoginRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT id, status, password_hash FROM users WHERE {column} = ?"
        ))
        .bind(value)
        .fetch_optional(self.0.pool())
        .await?;
        row.map(|r| {
            Ok(LoginRow {
                id: r.id("id")?,
                status: r.status("status")?,
                password_hash: r.text("password_hash")?,
            })
        })
        .transpose()
    }

    pub async fn session(self, session_id: SessionId) -> Result<Option<SessionState>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.user_id, s.revoked_at, s.expires_at, u.role, u.status
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        )
        .bind(session_id.to_string())
        .fetch_optional(self.0.pool())
        .await?;
        row.map(|r| {
            Ok(SessionState {
                user_id: r.id("user_id")?,
                role: r.status("role")?,
                user_status: r.status("status")?,
                revoked: r.opt_text("revoked_at")?.is_some(),
                expires_at: r.text("expires_at")?,
            })
        })
        .transpose()
    }

    pub async fn get(self, id: UserId) -> Result<Option<UserView>, sqlx::Error> {
        let row = sqlx::query(&format!("{USER_SELECT} WHERE u.id = ?"))
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(user_view).transpose()
    }

    /// Every active admin (told of escalations).
    pub async fn active_admins(self) -> Result<Vec<UserId>, sqlx::Error> {
        let rows = sqlx::query("SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id")
            .fetch_all(self.0.pool())
            .await?;
        rows.iter().map(|r| r.id("id")).collect()
    }

    pub async fn list(self, role: Option<Role>, page: PageParams) -> Result<Page<UserView>, sqlx::Error> {
        let list = ListQuery {
            select: USER_SELECT,
            from: "users u",
            order_by: "u.created_at DESC, u.id",
        };
        let filter = Where::new().and_eq("u.role = ?", role.map(|r| r.as_str()));
        self.0.page(&list, &filter, page, user_view).await
    }
}
