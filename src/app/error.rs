//! [`AppError`]: every way a use case can fail, as one type the handlers,
//! followers and the CLI all receive. Nothing here knows HTTP: `api::error`
//! gives each variant its status and builds the envelope. What a client reads
//! of a failure, its stable `error` code ([`AppError::code`]) and its Chinese
//! message ([`AppError::message`]), is chosen here, once, for every envelope
//! that carries it (an HTTP answer, an offline command's result).

use domain::alert::{AlertAction, AlertError};
use domain::booking::{BookingAction, BookingError};
use domain::compliance::NotCompliant;
use domain::evv::EvvExceptionError;
use domain::family::FamilyError;
use domain::file::FileError;
use domain::health_record::HealthRecordError;
use domain::hospital::{HospitalError, SlotError};
use domain::job::JobRunError;
use domain::order::{MedicalOrderError, OrderAction, OrderRequestError};
use domain::package::PackageError;
use domain::patient::PatientError;
use domain::push::PushError;
use domain::subscription::SubscriptionError;
use domain::user::UserError;
use domain::visit::{VisitAction, VisitError};
use domain::{DomainError, FieldErrors, Invalid, RefusalKind};

use crate::app::refusal::{Refusal, Unique, WechatRefusal};
use crate::store::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `validation_failed`: names every offending field.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// `unauthorized`: missing, invalid, expired or revoked credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// `forbidden`: the role may never do this.
    #[error("forbidden")]
    Forbidden,
    /// `not_found`: absent, or not visible to this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// `version_conflict`: the caller named an older version.
    #[error("version conflict: expected {expected}, actual {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    /// `conflict`: a business rule of an aggregate refused the command
    /// (never its validation or absence: those are the variants above).
    #[error(transparent)]
    Rule(DomainError),
    /// `conflict`: a rule outside any one aggregate refused the request.
    #[error(transparent)]
    Refused(Refusal),
    /// WeChat login and binding, each with its own code.
    #[error(transparent)]
    Wechat(WechatRefusal),
    /// `payload_too_large`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// `unsupported_media_type`.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// `rate_limited`: too many requests from this IP, or too many failed
    /// logins for this username; wait `retry_after` seconds.
    #[error("rate limited for {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// `idempotency_key_reused`: same key, different request.
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// `unavailable`.
    #[error("service unavailable")]
    Unavailable,
    /// `internal`: logged with its cause; the client reads only the code.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_string(), reason.into());
        AppError::Validation(m)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// A well-formed request that a rule turned down (`conflict`).
    pub fn is_refusal(&self) -> bool {
        matches!(self, AppError::Rule(_) | AppError::Refused(_))
    }

    /// The stable machine `error` string clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::VersionConflict { .. } => "version_conflict",
            AppError::Rule(_) | AppError::Refused(_) => "conflict",
            AppError::Wechat(w) => w.code(),
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::Unavailable => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// What the user reads, in Chinese. Clients and tests read these
    /// messages: change one only as a change of the API.
    pub fn message(&self) -> String {
        match self {
            AppError::Validation(fields) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("参数校验失败：{}", names.join("、"))
            }
            AppError::Unauthorized => "未登录或登录已失效".into(),
            AppError::Forbidden => "无权执行此操作".into(),
            AppError::NotFound(what) => format!("资源不存在：{what}"),
            AppError::VersionConflict { .. } => "数据已被他人修改，请刷新后重试".into(),
            AppError::Rule(rule) => rule_words(rule),
            AppError::Refused(r) => refusal_words(r),
            AppError::Wechat(w) => w.words().into(),
            AppError::PayloadTooLarge => "请求内容过大".into(),
            AppError::UnsupportedMediaType(what) => format!("不支持的文件或内容类型：{what}"),
            AppError::IdempotencyKeyReused => "幂等键已用于另一个不同的请求".into(),
            AppError::RateLimited { retry_after } => format!("请求过于频繁，请{retry_after}秒后再试"),
            AppError::Unavailable => "服务暂不可用".into(),
            AppError::Internal(_) => "服务器内部错误".into(),
        }
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::Validation(e.0)
    }
}

/// An aggregate's refusal by its kind: its field errors are `Validation`, its
/// absence `NotFound` naming the resource, every other rule `Rule`.
impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e.kind() {
            RefusalKind::Invalid(fields) => AppError::Validation(fields.clone()),
            RefusalKind::NotFound(what) => AppError::NotFound(what),
            RefusalKind::Rule => AppError::Rule(e),
        }
    }
}

/// A hospital's catalog answers whether it takes a booking outside a command.
impl From<HospitalError> for AppError {
    fn from(e: HospitalError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::Refused(r)
    }
}

impl From<WechatRefusal> for AppError {
    fn from(w: WechatRefusal) -> Self {
        AppError::Wechat(w)
    }
}

impl From<CommandError> for AppError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::VersionConflict { expected, actual } => AppError::VersionConflict { expected, actual },
            // Only offline sync marks commands, and it answers `duplicate` itself.
            CommandError::DuplicateCommand => AppError::Refused(Refusal::DuplicateCommand),
            CommandError::Store(s) => AppError::Internal(anyhow::anyhow!(s)),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// The words of the application's own refusals.
fn refusal_words(r: &Refusal) -> String {
    use Refusal as R;
    match r {
        R::NoDoctorAvailable => "当前没有可用的医生".into(),
        R::NoMatchingSlot => "没有匹配的号源".into(),
        R::SlotsFull => "号源已满".into(),
        R::PatientAlreadyBooked => "该患者在此时间已有医院预约".into(),
        R::MonthlyQuotaReached { quota } => format!("本月常规上门次数已达套餐上限（{quota}次）"),
        R::NoSubscriptionOnDate => "患者在该日期没有有效的服务订阅".into(),
        R::OutsideSubscription => "改期日期不在服务订阅有效期内".into(),
        R::RequestHandled => "医嘱申请已处理".into(),
        R::VisitTakesNoRecord { status } => format!("预约状态为{status}，不能再提交记录"),
        R::Taken(Unique::Username) => "用户名已存在".into(),
        R::Taken(Unique::Phone) => "手机号已被使用".into(),
        R::Taken(Unique::EmployeeId) => "工号已存在".into(),
        R::Taken(Unique::LicenseNumber) => "执业证号已存在".into(),
        R::OwnAccount => "不能停用自己的账号".into(),
        R::DuplicateCommand => "该离线命令已执行".into(),
        R::RequestInProgress => "相同幂等键的请求仍在处理中".into(),
        R::UndoFailed => "操作未能完整撤销，请稍后重试".into(),
    }
}

/// The words of every business rule of the aggregates.
fn rule_words(e: &DomainError) -> String {
    use DomainError as D;
    let illegal = |from: &str, verb: &str| format!("当前状态（{from}）不能{verb}");
    let not_compliant = |why: &NotCompliant, refused: &str| match why {
        NotCompliant::CertificateExpired { expired_on } => {
            format!("记录员资格证书已于{expired_on}过期，{refused}")
        }
        NotCompliant::OffDuty => format!("记录员不在岗，{refused}"),
    };
    let words: &str = match e {
        D::User(UserError::AlreadyExists) => "用户已存在",
        D::User(UserError::Inactive) => "用户不可用",
        D::Family(FamilyError::AlreadyExists) => "家庭已存在",
        D::Family(FamilyError::Erased) => "该家庭的个人信息已删除",
        D::Patient(PatientError::AlreadyExists) => "患者已存在",
        D::Patient(PatientError::Erased) => "该患者的个人信息已删除",
        D::Package(PackageError::AlreadyExists) => "套餐已存在",
        D::Subscription(SubscriptionError::AlreadyExists) => "订阅已存在",
        D::Subscription(SubscriptionError::Cancelled) => "已取消的订阅不能再变更状态",
        D::Subscription(SubscriptionError::RefundUnpaid) => "未付款的订阅不能退款",
        D::Subscription(SubscriptionError::Expired) => "已过期的订阅不能再变更状态",
        D::Subscription(SubscriptionError::NotEnded) => "订阅尚未到期",
        D::Subscription(SubscriptionError::RecorderNotCompliant(why)) => return not_compliant(why, "不能分配新的订阅"),
        D::Visit(VisitError::AlreadyScheduled) => "预约已存在",
        D::Visit(VisitError::IllegalTransition { from, action }) => {
            return illegal(
                from.as_str(),
                match action {
                    VisitAction::Confirm => "确认",
                    VisitAction::Reschedule => "改期",
                    VisitAction::Cancel => "取消",
                    VisitAction::Complete => "完成",
                    VisitAction::CheckIn => "签到",
                    VisitAction::CheckOut => "签出",
                    VisitAction::MarkMissed => "标记为未上门",
                },
            )
        }
        D::Visit(VisitError::MonthlyQuotaReached { quota }) => {
            return format!("本月常规上门次数已达套餐上限（{quota}次）")
        }
        D::Visit(VisitError::NoHealthRecord) => "完成上门前须先提交健康记录",
        D::Visit(VisitError::CheckOutBeforeCheckIn) => "签出时间不能早于签到时间",
        D::Visit(VisitError::RecordAlreadyTaken) => "该上门已有健康记录",
        D::Visit(VisitError::DayNotOver) => "预约当天尚未结束",
        D::Visit(VisitError::RecorderNotCompliant(why)) => return not_compliant(why, "不能安排新的上门"),
        D::File(FileError::Attached) => "文件已关联健康记录，不能删除",
        D::File(FileError::TooRecent) => "文件上传未满24小时，不能清理",
        D::File(FileError::AlreadyExists) => "文件已存在",
        D::JobRun(JobRunError::AlreadyRan { job, period }) => return format!("任务{job}已在{period}运行过"),
        D::EvvException(EvvExceptionError::AlreadyAcknowledged) => "该核验异常已确认",
        D::EvvException(EvvExceptionError::AlreadyResolved) => "该核验异常已处理完毕",
        D::HealthRecord(HealthRecordError::AlreadyExists) => "健康记录已存在",
        D::HealthRecord(HealthRecordError::NotTheRecorder) => "只有填写该记录的记录员可以更正",
        D::HealthRecord(HealthRecordError::AmendmentWindowClosed { window_days }) => {
            return format!("记录已超过{window_days}天的更正期限，请联系管理员解锁后再更正")
        }
        D::OrderRequest(OrderRequestError::AlreadyExists) => "医嘱申请已存在",
        D::OrderRequest(OrderRequestError::AlreadyHandled { .. }) => "医嘱申请已处理",
        D::MedicalOrder(MedicalOrderError::AlreadyExists) => "医嘱已存在",
        D::MedicalOrder(MedicalOrderError::IllegalTransition { action, .. }) => match action {
            OrderAction::Complete => "医嘱已结束，不能完成",
            OrderAction::Cancel => "医嘱已结束，不能取消",
        },
        D::Hospital(HospitalError::AlreadyExists) => "医院已存在",
        D::Hospital(HospitalError::DepartmentNameTaken) => "科室名称已存在",
        D::Hospital(HospitalError::DepartmentExists) => "科室已存在",
        D::Hospital(HospitalError::DoctorExists) => "医生已存在",
        D::Hospital(HospitalError::Inactive) => "该医院已停止合作",
        D::Hospital(HospitalError::DepartmentInactive) => "该科室已停用",
        D::Hospital(HospitalError::DoctorInactive) => "该医生已停诊",
        D::Slot(SlotError::AlreadyExists) => "号源已存在",
        D::Slot(SlotError::PatientAlreadyBooked) => "该患者已预约此号源",
        D::Slot(SlotError::Full) => "号源已满",
        D::Booking(BookingError::AlreadyExists) => "预约已存在",
        D::Booking(BookingError::IllegalTransition { from, action }) => {
            return illegal(
                from.as_str(),
                match action {
                    BookingAction::Confirm => "确认",
                    BookingAction::Complete => "完成",
                    BookingAction::Cancel => "取消",
                },
            )
        }
        D::Alert(AlertError::AlreadyExists) => "警报已存在",
        D::Alert(AlertError::NotItsDoctor) => "只有该警报当前的负责医生可以处理",
        D::Alert(AlertError::IllegalTransition { from, action }) => {
            return illegal(
                from.as_str(),
                match action {
                    AlertAction::Acknowledge => "确认",
                    AlertAction::Resolve => "处理",
                    AlertAction::Escalate => "升级",
                },
            )
        }
        D::Alert(AlertError::LevelMoved { .. }) => "警报已被升级，请刷新后重试",
        D::Alert(AlertError::NotDue { .. }) => "警报尚未到升级时间",
        // Pushes are commanded only by the push follower, never by a request.
        D::Push(PushError::InFlight) => "消息推送正在进行或已中断，不再重发",
        D::Push(PushError::Finished(_)) => "消息推送已结束",
        D::Push(PushError::NotDue { .. }) => "消息推送尚未到重试时间",
        D::Push(PushError::NotInFlight) => "没有进行中的消息推送",
        // Field errors and absences are `Validation` and `NotFound`
        // (`DomainError::kind`), never a `Rule`.
        _ => "操作被拒绝",
    };
    words.to_string()
}
