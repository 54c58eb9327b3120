//! The application's own refusals: requests that are well formed but that a
//! rule outside any one aggregate turns down (no doctor available, no slot
//! left, a unique value taken, …). Each is a `conflict`; the words the
//! user reads are chosen in `crate::app::error`. WeChat login and binding
//! refuse with codes of their own ([`WechatRefusal`]). Refusals of an
//! aggregate's own rules are its error enum (`domain::DomainError`).

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No active, available doctor to send an order request to.
    #[error("no doctor is available")]
    NoDoctorAvailable,
    /// No open slot of the hospital matches the date, time and department.
    #[error("no slot matches")]
    NoMatchingSlot,
    /// Every matching slot is full.
    #[error("the matching slots are full")]
    SlotsFull,
    /// The patient already has a hospital booking at that date and time.
    #[error("the patient is already booked at that time")]
    PatientAlreadyBooked,
    /// The month's regular visits of the patient's package are used up.
    #[error("the month's {quota} regular visits are used up")]
    MonthlyQuotaReached { quota: u32 },
    /// The patient has no active subscription on the visit's date.
    #[error("no active subscription on that date")]
    NoSubscriptionOnDate,
    /// A rescheduled date outside the visit's subscription.
    #[error("the new date is outside the subscription")]
    OutsideSubscription,
    /// The order request was fulfilled or closed already.
    #[error("the order request was handled already")]
    RequestHandled,
    /// The visit no longer takes a record (its status).
    #[error("a {status} visit takes no record")]
    VisitTakesNoRecord { status: String },
    /// A unique value of another user.
    #[error("the {0} is taken")]
    Taken(Unique),
    /// Admins cannot deactivate their own account.
    #[error("an admin cannot deactivate their own account")]
    OwnAccount,
    /// An offline command already applied (sync answers `duplicate` itself).
    #[error("the offline command was applied already")]
    DuplicateCommand,
    /// A request with the same idempotency key is still being handled.
    #[error("a request with the same idempotency key is in progress")]
    RequestInProgress,
    /// A compensation step of a saga failed (the step's own error is logged).
    #[error("an undo step failed")]
    UndoFailed,
}

/// The values unique across users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Username,
    Phone,
    EmployeeId,
    LicenseNumber,
}

impl Unique {
    /// The claim scope that keeps it unique (`EventStore::claim`).
    pub fn scope(self) -> &'static str {
        match self {
            Unique::Username => "username",
            Unique::Phone => "phone",
            Unique::EmployeeId => "employee_id",
            Unique::LicenseNumber => "license_number",
        }
    }
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scope())
    }
}

/// How WeChat login and binding refuse, each with its own `error` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WechatRefusal {
    /// `wechat_not_configured`: WeChat login is off on this server.
    #[error("WeChat login is not configured")]
    NotConfigured,
    /// `wechat_not_bound`: no account is bound to this WeChat account.
    #[error("the WeChat account is not bound")]
    NotBound,
    /// `wechat_code_invalid`: WeChat refused the login code.
    #[error("the WeChat login code is invalid")]
    CodeInvalid,
    /// `wechat_already_bound`: another account has this WeChat account.
    #[error("the WeChat account is bound to another user")]
    AlreadyBound,
    /// `wechat_unavailable`: WeChat did not answer.
    #[error("WeChat is unavailable")]
    Unavailable,
}

impl WechatRefusal {
    pub fn code(self) -> &'static str {
        match self {
            WechatRefusal::NotConfigured => "wechat_not_configured",
            WechatRefusal::NotBound => "wechat_not_bound",
            WechatRefusal::CodeInvalid => "wechat_code_invalid",
            WechatRefusal::AlreadyBound => "wechat_already_bound",
            WechatRefusal::Unavailable => "wechat_unavailable",
        }
    }

    /// What the user reads.
    pub fn words(self) -> &'static str {
        match self {
            WechatRefusal::NotConfigured => "未启用微信登录",
            WechatRefusal::NotBound => "该微信尚未绑定账号，请先用账号密码登录后绑定",
            WechatRefusal::CodeInvalid => "微信登录凭证无效或已过期，请重新登录",
            WechatRefusal::AlreadyBound => "该微信已绑定其他账号",
            WechatRefusal::Unavailable => "微信服务暂不可用，请稍后再试",
        }
    }
}
