//! Users of every role. Login sessions live on the user aggregate so that the
//! history shows every login and logout, and a suspension is one event away from
//! revoking everything.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::SessionId;
use crate::validation::Invalid;
use crate::values::PhoneNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Recorder,
    Doctor,
    Auditor,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "admin" => Ok(Role::Admin),
            "recorder" => Ok(Role::Recorder),
            "doctor" => Ok(Role::Doctor),
            "auditor" => Ok(Role::Auditor),
            _ => Err("应为admin、recorder、doctor或auditor".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Recorder => "recorder",
            Role::Doctor => "doctor",
            Role::Auditor => "auditor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    #[default]
    Active,
    Inactive,
    Suspended,
}

impl UserStatus {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "active" => Ok(UserStatus::Active),
            "inactive" => Ok(UserStatus::Inactive),
            "suspended" => Ok(UserStatus::Suspended),
            _ => Err("应为active、inactive或suspended".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
            UserStatus::Suspended => "suspended",
        }
    }
}

/// The recorder's professional profile (required for role `recorder`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecorderProfile {
    pub employee_id: String,
    pub qualification_cert: Option<String>,
    pub health_cert: Option<String>,
    pub cert_expiry_date: Option<NaiveDate>,
    pub work_area: Option<String>,
}

/// Our own doctor's profile (required for role `doctor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoctorProfile {
    pub license_number: String,
    pub specialty: String,
    pub hospital: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub consultation_fee: Option<Decimal>,
}

/// A validated new user, built by the server from the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub phone: PhoneNumber,
    pub password_hash: String,
    pub role: Role,
    pub name: String,
    pub avatar: Option<String>,
    pub recorder: Option<RecorderProfile>,
    pub doctor: Option<DoctorProfile>,
}

/// Changes to a recorder's profile (absent fields stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecorderChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualification_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_area: Option<String>,
    /// Whether the recorder is working (an off-duty recorder gets no new work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_on_duty: Option<bool>,
}

/// Changes to a doctor's profile (absent fields stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DoctorChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation_fee: Option<Decimal>,
    /// Whether the doctor takes new order requests and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_available: Option<bool>,
}

/// Changes to a user's account and profile (absent fields stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<RecorderChanges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<DoctorChanges>,
}

impl UserChanges {
    /// Nothing would change (an empty profile section counts as absent).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone.is_none()
            && self.avatar.is_none()
            && self.recorder.as_ref().is_none_or(|r| *r == RecorderChanges::default())
            && self.doctor.as_ref().is_none_or(|d| *d == DoctorChanges::default())
    }
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // commands are short-lived; boxing would only add noise
pub enum UserCommand {
    Create(NewUser),
    ChangeStatus {
        status: UserStatus,
    },
    /// A new password. `keep_session`: the session that changed it stays open
    /// (a user changing their own password); every other session ends.
    ChangePassword {
        password_hash: String,
        keep_session: Option<SessionId>,
    },
    /// New values for the account and the role's profile.
    UpdateProfile(UserChanges),
    RecordLogin {
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    Logout {
        session_id: SessionId,
    },
    /// Binds the user's WeChat account (the mini-program's openid); a binding
    /// to another openid is replaced. The server claims the openid for this
    /// user first, so one openid is bound to one user at most.
    BindWechat {
        /// The keyed hash the login looks the openid up by.
        openid_hash: String,
        /// The openid itself (personal data: sealed in the store), for sending messages.
        openid: String,
    },
    /// Ends the WeChat binding, if there is one.
    UnbindWechat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // events are serialized, never kept in bulk
pub enum UserEvent {
    UserCreated(NewUser),
    UserStatusChanged {
        status: UserStatus,
        previous: UserStatus,
    },
    UserPasswordChanged {
        password_hash: String,
        /// The one session that stays open (the user's own, when they changed it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept_session: Option<SessionId>,
    },
    UserProfileUpdated(UserChanges),
    UserLoggedIn {
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    UserLoggedOut {
        session_id: SessionId,
    },
    /// The user's WeChat account (openid) was bound: WeChat login and messages reach them.
    WechatBound {
        openid_hash: String,
        openid: String,
    },
    /// The WeChat binding ended.
    WechatUnbound {
        openid_hash: String,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserCreated(_) => "UserCreated",
            UserEvent::UserStatusChanged { .. } => "UserStatusChanged",
            UserEvent::UserPasswordChanged { .. } => "UserPasswordChanged",
            UserEvent::UserProfileUpdated(_) => "UserProfileUpdated",
            UserEvent::UserLoggedIn { .. } => "UserLoggedIn",
            UserEvent::UserLoggedOut { .. } => "UserLoggedOut",
            UserEvent::WechatBound { .. } => "WechatBound",
            UserEvent::WechatUnbound { .. } => "WechatUnbound",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct User {
    pub created: bool,
    pub role: Option<Role>,
    pub status: UserStatus,
    pub username: String,
    pub name: String,
    pub open_sessions: Vec<SessionId>,
    /// The bound WeChat account.
    #[serde(default)]
    pub wechat: Option<WechatAccount>,
}

/// A user's bound WeChat account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WechatAccount {
    /// The keyed hash logins look it up by.
    pub openid_hash: String,
    /// The openid messages are sent to (personal data).
    pub openid: String,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.created && self.status == UserStatus::Active
    }
}

/// Every way a user refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    /// A role's profile missing, or a profile the role does not have (400,
    /// naming `recorder` or `doctor`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No user was created under this id (404).
    #[error("no such user")]
    NotFound,
    /// A second creation under the same id (409).
    #[error("the user already exists")]
    AlreadyExists,
    /// Only an active user logs in (409; the login endpoint answers 401).
    #[error("the user is not active")]
    Inactive,
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if !self.created && !matches!(command, UserCommand::Create(_)) {
            return Err(UserError::NotFound);
        }
        let event = match command {
            UserCommand::Create(new) => {
                if self.created {
                    return Err(UserError::AlreadyExists);
                }
                match new.role {
                    Role::Recorder if new.recorder.is_none() => {
                        return Err(Invalid::field("recorder", "记录员必须提供recorder资料").into())
                    }
                    Role::Doctor if new.doctor.is_none() => {
                        return Err(Invalid::field("doctor", "医生必须提供doctor资料").into())
                    }
                    _ => {}
                }
                UserEvent::UserCreated(new)
            }
            UserCommand::ChangeStatus { status } => {
                if status == self.status {
                    return Ok(());
                }
                UserEvent::UserStatusChanged {
                    status,
                    previous: self.status,
                }
            }
            UserCommand::ChangePassword {
                password_hash,
                keep_session,
            } => UserEvent::UserPasswordChanged {
                password_hash,
                kept_session: keep_session.filter(|s| self.open_sessions.contains(s)),
            },
            UserCommand::UpdateProfile(changes) => {
                if changes.recorder.is_some() && self.role != Some(Role::Recorder) {
                    return Err(Invalid::field("recorder", "仅记录员有recorder资料").into());
                }
                if changes.doctor.is_some() && self.role != Some(Role::Doctor) {
                    return Err(Invalid::field("doctor", "仅医生有doctor资料").into());
                }
                if changes.is_empty() {
                    return Ok(());
                }
                UserEvent::UserProfileUpdated(changes)
            }
            UserCommand::RecordLogin { session_id, expires_at } => {
                if !self.is_active() {
                    return Err(UserError::Inactive);
                }
                UserEvent::UserLoggedIn { session_id, expires_at }
            }
            UserCommand::Logout { session_id } => {
                if !self.open_sessions.contains(&session_id) {
                    return Ok(());
                }
                UserEvent::UserLoggedOut { session_id }
            }
            UserCommand::BindWechat { openid_hash, openid } => {
                match &self.wechat {
                    Some(bound) if bound.openid_hash == openid_hash => return Ok(()),
                    Some(bound) => {
                        sink.write(
                            UserEvent::WechatUnbound {
                                openid_hash: bound.openid_hash.clone(),
                            },
                            self,
                        )
                        .await
                    }
                    None => {}
                }
                UserEvent::WechatBound { openid_hash, openid }
            }
            UserCommand::UnbindWechat => match &self.wechat {
                Some(bound) => UserEvent::WechatUnbound {
                    openid_hash: bound.openid_hash.clone(),
                },
                None => return Ok(()),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserCreated(new) => {
                self.created = true;
                self.role = Some(new.role);
                self.username = new.username;
                self.name = new.name;
            }
            UserEvent::UserStatusChanged { status, .. } => {
                self.status = status;
                if status != UserStatus::Active {
                    self.open_sessions.clear();
                }
            }
            UserEvent::UserPasswordChanged { kept_session, .. } => {
                self.open_sessions.retain(|s| Some(*s) == kept_session)
            }
            UserEvent::UserProfileUpdated(changes) => {
                if let Some(name) = changes.name {
                    self.name = name;
                }
            }
            UserEvent::UserLoggedIn { session_id, .. } => {
                // Keep the state small: only the most recent sessions matter for logout.
                self.open_sessions.push(session_id);
                if self.open_sessions.len() > 50 {
                    self.open_sessions.remove(0);
                }
            }
            UserEvent::UserLoggedOut { session_id } => self.open_sessions.retain(|s| *s != session_id),
            UserEvent::WechatBound { openid_hash, openid } => self.wechat = Some(WechatAccount { openid_hash, openid }),
            UserEvent::WechatUnbound { .. } => self.wechat = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<User>;

    fn recorder() -> NewUser {
        NewUser {
            username: "li".into(),
            phone: PhoneNumber::parse("13800138000").unwrap(),
            password_hash: "h".into(),
            role: Role::Recorder,
            name: "李".into(),
            avatar: None,
            recorder: Some(RecorderProfile {
                employee_id: "E1".into(),
                qualification_cert: None,
                health_cert: None,
                cert_expiry_date: None,
                work_area: None,
            }),
            doctor: None,
        }
    }

    #[test]
    fn it_should_create_a_recorder_with_a_profile() {
        T::with(())
            .given_no_previous_events()
            .when(UserCommand::Create(recorder()))
            .then_expect_events(vec![UserEvent::UserCreated(recorder())]);
    }

    fn refused_field(given: Vec<UserEvent>, command: UserCommand) -> Option<String> {
        match T::with(()).given(given).when(command).inspect_result() {
            Err(UserError::Validation(Invalid(fields))) => fields.into_keys().next(),
            _ => None,
        }
    }

    #[test]
    fn it_should_not_create_a_recorder_without_a_profile() {
        let mut u = recorder();
        u.recorder = None;
        assert_eq!(
            refused_field(vec![], UserCommand::Create(u)).as_deref(),
            Some("recorder")
        );
    }

    #[test]
    fn it_should_not_create_a_doctor_without_a_profile() {
        let u = NewUser {
            role: Role::Doctor,
            recorder: None,
            ..recorder()
        };
        assert_eq!(refused_field(vec![], UserCommand::Create(u)).as_deref(), Some("doctor"));
    }

    #[test]
    fn it_should_create_an_admin_without_a_profile() {
        let admin = NewUser {
            role: Role::Admin,
            recorder: None,
            ..recorder()
        };
        T::with(())
            .given_no_previous_events()
            .when(UserCommand::Create(admin.clone()))
            .then_expect_events(vec![UserEvent::UserCreated(admin)]);
    }

    #[test]
    fn it_should_not_create_a_user_twice() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::Create(recorder()))
            .then_expect_error(UserError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_every_other_command_for_a_user_never_created() {
        let session = SessionId::default();
        for command in [
            UserCommand::ChangeStatus {
                status: UserStatus::Suspended,
            },
            UserCommand::ChangePassword {
                password_hash: "h2".into(),
                keep_session: None,
            },
            UserCommand::UpdateProfile(UserChanges::default()),
            UserCommand::RecordLogin {
                session_id: session,
                expires_at: Utc::now(),
            },
            UserCommand::Logout { session_id: session },
        ] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(UserError::NotFound);
        }
    }

    #[test]
    fn it_should_suspend_a_user_and_remember_the_previous_status() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::ChangeStatus {
                status: UserStatus::Suspended,
            })
            .then_expect_events(vec![UserEvent::UserStatusChanged {
                status: UserStatus::Suspended,
                previous: UserStatus::Active,
            }]);
    }

    #[test]
    fn it_should_log_in_an_active_user() {
        let (session_id, expires_at) = (SessionId::new(), Utc::now());
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::RecordLogin { session_id, expires_at })
            .then_expect_events(vec![UserEvent::UserLoggedIn { session_id, expires_at }]);
    }

    #[test]
    fn it_should_not_log_in_a_suspended_user() {
        T::with(())
            .given(vec![
                UserEvent::UserCreated(recorder()),
                UserEvent::UserStatusChanged {
                    status: UserStatus::Suspended,
                    previous: UserStatus::Active,
                },
            ])
            .when(UserCommand::RecordLogin {
                session_id: SessionId::new(),
                expires_at: Utc::now(),
            })
            .then_expect_error(UserError::Inactive);
    }

    #[test]
    fn it_should_log_out_an_open_session() {
        let session = SessionId::new();
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder()), logged_in(session)])
            .when(UserCommand::Logout { session_id: session })
            .then_expect_events(vec![UserEvent::UserLoggedOut { session_id: session }]);
    }

    #[test]
    fn it_should_record_nothing_when_logging_out_a_session_that_is_not_open() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::Logout {
                session_id: SessionId::new(),
            })
            .then_expect_events(vec![]);
    }

    fn logged_in(session: SessionId) -> UserEvent {
        UserEvent::UserLoggedIn {
            session_id: session,
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn it_should_keep_the_changing_session_open_when_users_change_their_own_password() {
        let (mine, other) = (SessionId::new(), SessionId::new());
        T::with(())
            .given(vec![
                UserEvent::UserCreated(recorder()),
                logged_in(mine),
                logged_in(other),
            ])
            .when(UserCommand::ChangePassword {
                password_hash: "h2".into(),
                keep_session: Some(mine),
            })
            .then_expect_events(vec![UserEvent::UserPasswordChanged {
                password_hash: "h2".into(),
                kept_session: Some(mine),
            }]);
    }

    #[test]
    fn it_should_end_every_session_when_an_admin_resets_the_password() {
        let mut user = User::default();
        for e in [UserEvent::UserCreated(recorder()), logged_in(SessionId::new())] {
            user.apply(e);
        }
        user.apply(UserEvent::UserPasswordChanged {
            password_hash: "h2".into(),
            kept_session: None,
        });
        assert!(user.open_sessions.is_empty());
    }

    #[test]
    fn it_should_not_keep_a_session_that_is_not_open() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::ChangePassword {
                password_hash: "h2".into(),
                keep_session: Some(SessionId::new()),
            })
            .then_expect_events(vec![UserEvent::UserPasswordChanged {
                password_hash: "h2".into(),
                kept_session: None,
            }]);
    }

    #[test]
    fn it_should_update_a_recorders_duty_and_certificate() {
        let changes = UserChanges {
            recorder: Some(RecorderChanges {
                is_on_duty: Some(false),
                cert_expiry_date: NaiveDate::from_ymd_opt(2027, 1, 31),
                ..Default::default()
            }),
            ..Default::default()
        };
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::UpdateProfile(changes.clone()))
            .then_expect_events(vec![UserEvent::UserProfileUpdated(changes)]);
    }

    #[test]
    fn it_should_not_give_a_recorder_a_doctors_profile() {
        let command = UserCommand::UpdateProfile(UserChanges {
            doctor: Some(DoctorChanges {
                is_available: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            refused_field(vec![UserEvent::UserCreated(recorder())], command).as_deref(),
            Some("doctor")
        );
    }

    #[test]
    fn it_should_not_give_a_doctor_a_recorders_profile() {
        let doctor = NewUser {
            role: Role::Doctor,
            recorder: None,
            doctor: Some(DoctorProfile {
                license_number: "L1".into(),
                specialty: "全科".into(),
                hospital: None,
                department: None,
                title: None,
                consultation_fee: None,
            }),
            ..recorder()
        };
        let command = UserCommand::UpdateProfile(UserChanges {
            recorder: Some(RecorderChanges {
                is_on_duty: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            refused_field(vec![UserEvent::UserCreated(doctor)], command).as_deref(),
            Some("recorder")
        );
    }

    #[test]
    fn it_should_record_nothing_when_a_profile_update_changes_nothing() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::UpdateProfile(UserChanges {
                recorder: Some(RecorderChanges::default()),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_old_password_change_event_still_reads() {
        let e: UserEvent =
            serde_json::from_value(serde_json::json!({"UserPasswordChanged": {"password_hash": "h"}})).unwrap();
        assert_eq!(
            e,
            UserEvent::UserPasswordChanged {
                password_hash: "h".into(),
                kept_session: None
            }
        );
    }

    #[test]
    fn it_should_record_nothing_when_the_status_does_not_change() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(UserCommand::ChangeStatus {
                status: UserStatus::Active,
            })
            .then_expect_events(vec![]);
    }

    fn bound(hash: &str) -> UserEvent {
        UserEvent::WechatBound {
            openid_hash: hash.into(),
            openid: format!("openid-{hash}"),
        }
    }

    fn bind(hash: &str) -> UserCommand {
        UserCommand::BindWechat {
            openid_hash: hash.into(),
            openid: format!("openid-{hash}"),
        }
    }

    #[test]
    fn it_should_bind_a_wechat_account() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder())])
            .when(bind("h1"))
            .then_expect_events(vec![bound("h1")]);
    }

    #[test]
    fn it_should_not_bind_the_same_wechat_account_twice() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder()), bound("h1")])
            .when(bind("h1"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_replace_a_binding_to_another_wechat_account() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder()), bound("h1")])
            .when(bind("h2"))
            .then_expect_events(vec![
                UserEvent::WechatUnbound {
                    openid_hash: "h1".into(),
                },
                bound("h2"),
            ]);
    }

    #[test]
    fn it_should_unbind_the_bound_wechat_account_and_nothing_when_none_is() {
        T::with(())
            .given(vec![UserEvent::UserCreated(recorder()), bound("h1")])
            .when(UserCommand::UnbindWechat)
            .then_expect_events(vec![UserEvent::WechatUnbound {
                openid_hash: "h1".into(),
            }]);
        T::with(())
            .given(vec![
                UserEvent::UserCreated(recorder()),
                bound("h1"),
                UserEvent::WechatUnbound {
                    openid_hash: "h1".into(),
                },
            ])
            .when(UserCommand::UnbindWechat)
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_bind_wechat_to_a_user_never_created() {
        T::with(())
            .given_no_previous_events()
            .when(bind("h1"))
            .then_expect_error(UserError::NotFound);
    }
}
