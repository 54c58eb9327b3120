//! The one place where errors become HTTP responses. Every variant names its
//! status and stable `error` string; `message` is for people, in Chinese.
//! Internal errors are logged with their cause chain and reach the client only
//! as `internal` plus the request id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
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
use domain::{DomainError, FieldErrors, Invalid};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::CommandError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation_failed`: names every offending field in `details`.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 401 `unauthorized`: missing, invalid, expired or revoked credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// 403 `forbidden`: the role may never do this.
    #[error("forbidden")]
    Forbidden,
    /// 404 `not_found`: absent, or not visible to this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `version_conflict`: `If-Match` named an older version.
    #[error("version conflict: expected {expected}, actual {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    /// 409 `conflict`: a business rule refused the command.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413 `payload_too_large`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 429 `rate_limited`: too many requests from this IP, or too many failed
    /// logins for this username; `Retry-After` says how many seconds to wait.
    #[error("rate limited for {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// 422 `idempotency_key_reused`: same key, different request.
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// 503 `unavailable`.
    #[error("service unavailable")]
    Unavailable,
    /// A refusal with its own stable `error` string and status (WeChat login
    /// and binding: `wechat_not_configured` 404, `wechat_not_bound` and
    /// `wechat_code_invalid` 401, `wechat_already_bound` 409,
    /// `wechat_unavailable` 502).
    #[error("{error}")]
    Coded {
        status: StatusCode,
        error: &'static str,
        message: &'static str,
    },
    /// 500 `internal`.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_string(), reason.into());
        ApiError::Validation(m)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Coded { status, error, .. } => (*status, error),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Validation(fields) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("参数校验失败：{}", names.join("、"))
            }
            ApiError::Unauthorized => "未登录或登录已失效".into(),
            ApiError::Forbidden => "无权执行此操作".into(),
            ApiError::NotFound(what) => format!("资源不存在：{what}"),
            ApiError::VersionConflict { .. } => "数据已被他人修改，请刷新后重试".into(),
            ApiError::Conflict(reason) => reason.clone(),
            ApiError::PayloadTooLarge => "请求内容过大".into(),
            ApiError::UnsupportedMediaType(what) => format!("不支持的文件或内容类型：{what}"),
            ApiError::IdempotencyKeyReused => "幂等键已用于另一个不同的请求".into(),
            ApiError::RateLimited { retry_after } => format!("请求过于频繁，请{retry_after}秒后再试"),
            ApiError::Unavailable => "服务暂不可用".into(),
            ApiError::Coded { message, .. } => (*message).into(),
            ApiError::Internal(_) => "服务器内部错误".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, error) = self.parts();
        let mut body = json!({
            "code": status.as_u16(),
            "message": self.message(),
            "data": Value::Null,
            "error": error,
        });
        match self {
            ApiError::Validation(fields) => body["details"] = json!(fields),
            ApiError::VersionConflict { actual, .. } => body["details"] = json!({ "current_version": actual }),
            ApiError::RateLimited { retry_after } => {
                body["details"] = json!({ "retry_after": retry_after });
                return HttpResponse::build(status)
                    .insert_header((actix_web::http::header::RETRY_AFTER, retry_after.to_string()))
                    .json(body);
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                body["request_id"] = json!(current_request_id());
            }
            _ => {}
        }
        HttpResponse::build(status).json(body)
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.0)
    }
}

/// Every refusal of the domain, as the client hears it: field errors are 400
/// `validation_failed` naming the fields, an absent aggregate is 404
/// `not_found` naming the resource, and every business rule is 409 `conflict`
/// with its message here. Clients and tests read these messages: change one
/// only as a change of the API.
/// The words of the application's own refusals (`app::refusal`): 409 `conflict`.
impl From<crate::app::refusal::Refusal> for ApiError {
    fn from(r: crate::app::refusal::Refusal) -> Self {
        use crate::app::refusal::{Refusal as R, Unique};
        ApiError::Conflict(match r {
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
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use DomainError as D;
        let conflict = |message: &str| ApiError::Conflict(message.to_string());
        let illegal = |from: &str, verb: &str| ApiError::Conflict(format!("当前状态（{from}）不能{verb}"));
        let not_compliant = |why: NotCompliant, refused: &str| {
            ApiError::Conflict(match why {
                NotCompliant::CertificateExpired { expired_on } => {
                    format!("记录员资格证书已于{expired_on}过期，{refused}")
                }
                NotCompliant::OffDuty => format!("记录员不在岗，{refused}"),
            })
        };
        match e {
            D::User(UserError::Validation(i))
            | D::Patient(PatientError::Validation(i))
            | D::Package(PackageError::Validation(i))
            | D::Subscription(SubscriptionError::Validation(i))
            | D::Visit(VisitError::Validation(i))
            | D::HealthRecord(HealthRecordError::Validation(i))
            | D::MedicalOrder(MedicalOrderError::Validation(i))
            | D::Hospital(HospitalError::Validation(i))
            | D::Slot(SlotError::Validation(i))
            | D::Booking(BookingError::Validation(i))
            | D::EvvException(EvvExceptionError::Validation(i))
            | D::Alert(AlertError::Validation(i)) => i.into(),

            D::User(UserError::NotFound) => ApiError::NotFound("user"),
            D::Family(FamilyError::NotFound) => ApiError::NotFound("family"),
            D::Patient(PatientError::NotFound) => ApiError::NotFound("patient"),
            D::Subscription(SubscriptionError::NotFound) => ApiError::NotFound("subscription"),
            D::Visit(VisitError::NotFound) => ApiError::NotFound("appointment"),
            D::HealthRecord(HealthRecordError::NotFound) => ApiError::NotFound("health_record"),
            D::OrderRequest(OrderRequestError::NotFound) => ApiError::NotFound("order_request"),
            D::MedicalOrder(MedicalOrderError::NotFound) => ApiError::NotFound("medical_order"),
            D::Hospital(HospitalError::NotFound) => ApiError::NotFound("hospital"),
            D::Hospital(HospitalError::DepartmentNotFound) => ApiError::NotFound("department"),
            D::Hospital(HospitalError::DoctorNotFound) => ApiError::NotFound("doctor"),
            D::Slot(SlotError::NotFound) => ApiError::NotFound("slot"),
            D::Booking(BookingError::NotFound) => ApiError::NotFound("hospital_appointment"),
            D::EvvException(EvvExceptionError::NotFound) => ApiError::NotFound("evv_exception"),
            D::Alert(AlertError::NotFound) => ApiError::NotFound("alert"),

            D::User(UserError::AlreadyExists) => conflict("用户已存在"),
            D::User(UserError::Inactive) => conflict("用户不可用"),
            D::Family(FamilyError::AlreadyExists) => conflict("家庭已存在"),
            D::Family(FamilyError::Erased) => conflict("该家庭的个人信息已删除"),
            D::Patient(PatientError::AlreadyExists) => conflict("患者已存在"),
            D::Patient(PatientError::Erased) => conflict("该患者的个人信息已删除"),
            D::Package(PackageError::AlreadyExists) => conflict("套餐已存在"),
            D::Subscription(SubscriptionError::AlreadyExists) => conflict("订阅已存在"),
            D::Subscription(SubscriptionError::Cancelled) => conflict("已取消的订阅不能再变更状态"),
            D::Subscription(SubscriptionError::RefundUnpaid) => conflict("未付款的订阅不能退款"),
            D::Visit(VisitError::AlreadyScheduled) => conflict("预约已存在"),
            D::Visit(VisitError::IllegalTransition { from, action }) => illegal(
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
            ),
            D::Visit(VisitError::MonthlyQuotaReached { quota }) => {
                conflict(&format!("本月常规上门次数已达套餐上限（{quota}次）"))
            }
            D::Visit(VisitError::NoHealthRecord) => conflict("完成上门前须先提交健康记录"),
            D::Visit(VisitError::CheckOutBeforeCheckIn) => conflict("签出时间不能早于签到时间"),
            D::Visit(VisitError::RecordAlreadyTaken) => conflict("该上门已有健康记录"),
            D::Visit(VisitError::DayNotOver) => conflict("预约当天尚未结束"),
            D::Subscription(SubscriptionError::Expired) => conflict("已过期的订阅不能再变更状态"),
            D::Subscription(SubscriptionError::NotEnded) => conflict("订阅尚未到期"),
            D::File(FileError::NotFound) => ApiError::NotFound("file"),
            D::File(FileError::Attached) => conflict("文件已关联健康记录，不能删除"),
            D::File(FileError::TooRecent) => conflict("文件上传未满24小时，不能清理"),
            D::JobRun(JobRunError::AlreadyRan { job, period }) => conflict(&format!("任务{job}已在{period}运行过")),
            D::EvvException(EvvExceptionError::AlreadyAcknowledged) => conflict("该核验异常已确认"),
            D::EvvException(EvvExceptionError::AlreadyResolved) => conflict("该核验异常已处理完毕"),
            D::Visit(VisitError::RecorderNotCompliant(why)) => not_compliant(why, "不能安排新的上门"),
            D::Subscription(SubscriptionError::RecorderNotCompliant(why)) => not_compliant(why, "不能分配新的订阅"),
            D::HealthRecord(HealthRecordError::AlreadyExists) => conflict("健康记录已存在"),
            D::HealthRecord(HealthRecordError::NotTheRecorder) => conflict("只有填写该记录的记录员可以更正"),
            D::HealthRecord(HealthRecordError::AmendmentWindowClosed { window_days }) => conflict(&format!(
                "记录已超过{window_days}天的更正期限，请联系管理员解锁后再更正"
            )),
            D::File(FileError::AlreadyExists) => conflict("文件已存在"),
            D::OrderRequest(OrderRequestError::AlreadyExists) => conflict("医嘱申请已存在"),
            D::OrderRequest(OrderRequestError::AlreadyHandled { .. }) => conflict("医嘱申请已处理"),
            D::MedicalOrder(MedicalOrderError::AlreadyExists) => conflict("医嘱已存在"),
            D::MedicalOrder(MedicalOrderError::IllegalTransition { action, .. }) => match action {
                OrderAction::Complete => conflict("医嘱已结束，不能完成"),
                OrderAction::Cancel => conflict("医嘱已结束，不能取消"),
            },
            D::Hospital(HospitalError::AlreadyExists) => conflict("医院已存在"),
            D::Hospital(HospitalError::DepartmentNameTaken) => conflict("科室名称已存在"),
            D::Hospital(HospitalError::DepartmentExists) => conflict("科室已存在"),
            D::Hospital(HospitalError::DoctorExists) => conflict("医生已存在"),
            D::Hospital(HospitalError::Inactive) => conflict("该医院已停止合作"),
            D::Hospital(HospitalError::DepartmentInactive) => conflict("该科室已停用"),
            D::Hospital(HospitalError::DoctorInactive) => conflict("该医生已停诊"),
            D::Slot(SlotError::AlreadyExists) => conflict("号源已存在"),
            D::Slot(SlotError::PatientAlreadyBooked) => conflict("该患者已预约此号源"),
            D::Slot(SlotError::Full) => conflict("号源已满"),
            D::Booking(BookingError::AlreadyExists) => conflict("预约已存在"),
            D::Booking(BookingError::IllegalTransition { from, action }) => illegal(
                from.as_str(),
                match action {
                    BookingAction::Confirm => "确认",
                    BookingAction::Complete => "完成",
                    BookingAction::Cancel => "取消",
                },
            ),
            D::Alert(AlertError::AlreadyExists) => conflict("警报已存在"),
            D::Alert(AlertError::NotItsDoctor) => conflict("只有该警报当前的负责医生可以处理"),
            D::Alert(AlertError::IllegalTransition { from, action }) => illegal(
                from.as_str(),
                match action {
                    AlertAction::Acknowledge => "确认",
                    AlertAction::Resolve => "处理",
                    AlertAction::Escalate => "升级",
                },
            ),
            D::Alert(AlertError::LevelMoved { .. }) => conflict("警报已被升级，请刷新后重试"),
            D::Alert(AlertError::NotDue { .. }) => conflict("警报尚未到升级时间"),
            // Pushes are commanded only by the push follower, never by a request.
            D::Push(PushError::NotFound) => ApiError::NotFound("push"),
            D::Push(PushError::InFlight) => conflict("消息推送正在进行或已中断，不再重发"),
            D::Push(PushError::Finished(_)) => conflict("消息推送已结束"),
            D::Push(PushError::NotDue { .. }) => conflict("消息推送尚未到重试时间"),
            D::Push(PushError::NotInFlight) => conflict("没有进行中的消息推送"),
        }
    }
}

/// A hospital's catalog answers whether it takes a booking outside a command.
impl From<HospitalError> for ApiError {
    fn from(e: HospitalError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::VersionConflict { expected, actual } => ApiError::VersionConflict { expected, actual },
            // Only offline sync marks commands, and it answers `duplicate` itself.
            CommandError::DuplicateCommand => ApiError::Conflict("该离线命令已执行".into()),
            CommandError::Store(s) => ApiError::Internal(anyhow::anyhow!(s)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

/// The success envelope.
pub fn envelope<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "code": status.as_u16(), "message": "成功", "data": data }))
}

pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    envelope(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> HttpResponse {
    envelope(StatusCode::CREATED, data)
}

/// 200 with the aggregate's version also in the `ETag` header.
pub fn ok_versioned<T: Serialize>(data: T, version: i64) -> HttpResponse {
    let mut r = ok(data);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(actix_web::http::header::ETAG, v);
    }
    r
}

pub type ApiResult = Result<HttpResponse, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use domain::alert::AlertStatus;
    use domain::booking::BookingStatus;
    use domain::order::{OrderStatus, RequestStatus};
    use domain::visit::VisitStatus;

    /// Status, `error` string and message, as the envelope carries them.
    fn answer(e: DomainError) -> (u16, &'static str, String) {
        let api = ApiError::from(e);
        let (status, error) = api.parts();
        (status.as_u16(), error, api.message())
    }

    /// The application's own refusals: 409 `conflict`, in the words clients
    /// read before they had their own enum.
    #[test]
    fn every_refusal_is_a_409_conflict_with_its_message() {
        use crate::app::refusal::{Refusal as R, Unique};
        let refusals = [
            (R::NoDoctorAvailable, "当前没有可用的医生"),
            (R::NoMatchingSlot, "没有匹配的号源"),
            (R::SlotsFull, "号源已满"),
            (R::PatientAlreadyBooked, "该患者在此时间已有医院预约"),
            (
                R::MonthlyQuotaReached { quota: 4 },
                "本月常规上门次数已达套餐上限（4次）",
            ),
            (R::NoSubscriptionOnDate, "患者在该日期没有有效的服务订阅"),
            (R::OutsideSubscription, "改期日期不在服务订阅有效期内"),
            (R::RequestHandled, "医嘱申请已处理"),
            (
                R::VisitTakesNoRecord {
                    status: "cancelled".into(),
                },
                "预约状态为cancelled，不能再提交记录",
            ),
            (R::Taken(Unique::Username), "用户名已存在"),
            (R::Taken(Unique::Phone), "手机号已被使用"),
            (R::Taken(Unique::EmployeeId), "工号已存在"),
            (R::Taken(Unique::LicenseNumber), "执业证号已存在"),
            (R::OwnAccount, "不能停用自己的账号"),
        ];
        for (refusal, message) in refusals {
            let api = ApiError::from(refusal.clone());
            let (status, error) = api.parts();
            assert_eq!(
                (status.as_u16(), error, api.message()),
                (409, "conflict", message.to_string()),
                "{refusal:?}"
            );
        }
    }

    /// The messages clients read, word for word as before the domain had its
    /// own error enums.
    #[test]
    fn every_business_rule_is_a_409_conflict_with_its_message() {
        let rules: Vec<(DomainError, &str)> = vec![
            (UserError::AlreadyExists.into(), "用户已存在"),
            (UserError::Inactive.into(), "用户不可用"),
            (FamilyError::AlreadyExists.into(), "家庭已存在"),
            (FamilyError::Erased.into(), "该家庭的个人信息已删除"),
            (PatientError::AlreadyExists.into(), "患者已存在"),
            (PatientError::Erased.into(), "该患者的个人信息已删除"),
            (PackageError::AlreadyExists.into(), "套餐已存在"),
            (SubscriptionError::AlreadyExists.into(), "订阅已存在"),
            (SubscriptionError::Cancelled.into(), "已取消的订阅不能再变更状态"),
            (SubscriptionError::RefundUnpaid.into(), "未付款的订阅不能退款"),
            (VisitError::AlreadyScheduled.into(), "预约已存在"),
            (
                VisitError::IllegalTransition {
                    from: VisitStatus::Cancelled,
                    action: VisitAction::Complete,
                }
                .into(),
                "当前状态（cancelled）不能完成",
            ),
            (
                VisitError::IllegalTransition {
                    from: VisitStatus::Completed,
                    action: VisitAction::Reschedule,
                }
                .into(),
                "当前状态（completed）不能改期",
            ),
            (
                VisitError::MonthlyQuotaReached { quota: 4 }.into(),
                "本月常规上门次数已达套餐上限（4次）",
            ),
            (VisitError::NoHealthRecord.into(), "完成上门前须先提交健康记录"),
            (VisitError::CheckOutBeforeCheckIn.into(), "签出时间不能早于签到时间"),
            (VisitError::RecordAlreadyTaken.into(), "该上门已有健康记录"),
            (EvvExceptionError::AlreadyAcknowledged.into(), "该核验异常已确认"),
            (EvvExceptionError::AlreadyResolved.into(), "该核验异常已处理完毕"),
            (
                VisitError::RecorderNotCompliant(NotCompliant::CertificateExpired {
                    expired_on: chrono::NaiveDate::from_ymd_opt(2026, 2, 28).unwrap(),
                })
                .into(),
                "记录员资格证书已于2026-02-28过期，不能安排新的上门",
            ),
            (
                VisitError::RecorderNotCompliant(NotCompliant::OffDuty).into(),
                "记录员不在岗，不能安排新的上门",
            ),
            (
                SubscriptionError::RecorderNotCompliant(NotCompliant::OffDuty).into(),
                "记录员不在岗，不能分配新的订阅",
            ),
            (
                VisitError::IllegalTransition {
                    from: VisitStatus::InProgress,
                    action: VisitAction::CheckIn,
                }
                .into(),
                "当前状态（in_progress）不能签到",
            ),
            (
                VisitError::IllegalTransition {
                    from: VisitStatus::Scheduled,
                    action: VisitAction::CheckOut,
                }
                .into(),
                "当前状态（scheduled）不能签出",
            ),
            (HealthRecordError::AlreadyExists.into(), "健康记录已存在"),
            (
                HealthRecordError::NotTheRecorder.into(),
                "只有填写该记录的记录员可以更正",
            ),
            (
                HealthRecordError::AmendmentWindowClosed { window_days: 7 }.into(),
                "记录已超过7天的更正期限，请联系管理员解锁后再更正",
            ),
            (FileError::AlreadyExists.into(), "文件已存在"),
            (OrderRequestError::AlreadyExists.into(), "医嘱申请已存在"),
            (
                OrderRequestError::AlreadyHandled {
                    status: RequestStatus::Fulfilled,
                }
                .into(),
                "医嘱申请已处理",
            ),
            (MedicalOrderError::AlreadyExists.into(), "医嘱已存在"),
            (
                MedicalOrderError::IllegalTransition {
                    from: OrderStatus::Cancelled,
                    action: OrderAction::Complete,
                }
                .into(),
                "医嘱已结束，不能完成",
            ),
            (
                MedicalOrderError::IllegalTransition {
                    from: OrderStatus::Completed,
                    action: OrderAction::Cancel,
                }
                .into(),
                "医嘱已结束，不能取消",
            ),
            (HospitalError::AlreadyExists.into(), "医院已存在"),
            (HospitalError::DepartmentNameTaken.into(), "科室名称已存在"),
            (HospitalError::DepartmentExists.into(), "科室已存在"),
            (HospitalError::DoctorExists.into(), "医生已存在"),
            (HospitalError::Inactive.into(), "该医院已停止合作"),
            (HospitalError::DepartmentInactive.into(), "该科室已停用"),
            (HospitalError::DoctorInactive.into(), "该医生已停诊"),
            (SlotError::AlreadyExists.into(), "号源已存在"),
            (SlotError::PatientAlreadyBooked.into(), "该患者已预约此号源"),
            (SlotError::Full.into(), "号源已满"),
            (BookingError::AlreadyExists.into(), "预约已存在"),
            (
                BookingError::IllegalTransition {
                    from: BookingStatus::Pending,
                    action: BookingAction::Complete,
                }
                .into(),
                "当前状态（pending）不能完成",
            ),
            (
                BookingError::IllegalTransition {
                    from: BookingStatus::Completed,
                    action: BookingAction::Cancel,
                }
                .into(),
                "当前状态（completed）不能取消",
            ),
            (AlertError::AlreadyExists.into(), "警报已存在"),
            (AlertError::NotItsDoctor.into(), "只有该警报当前的负责医生可以处理"),
            (
                AlertError::IllegalTransition {
                    from: AlertStatus::Acknowledged,
                    action: AlertAction::Acknowledge,
                }
                .into(),
                "当前状态（acknowledged）不能确认",
            ),
            (
                AlertError::IllegalTransition {
                    from: AlertStatus::Resolved,
                    action: AlertAction::Resolve,
                }
                .into(),
                "当前状态（resolved）不能处理",
            ),
            (
                AlertError::IllegalTransition {
                    from: AlertStatus::Acknowledged,
                    action: AlertAction::Escalate,
                }
                .into(),
                "当前状态（acknowledged）不能升级",
            ),
            (
                AlertError::LevelMoved { expected: 0, actual: 1 }.into(),
                "警报已被升级，请刷新后重试",
            ),
            (
                AlertError::NotDue {
                    due_at: chrono::DateTime::UNIX_EPOCH,
                }
                .into(),
                "警报尚未到升级时间",
            ),
        ];
        for (refusal, message) in rules {
            let shown = format!("{refusal:?}");
            assert_eq!(answer(refusal), (409, "conflict", message.to_string()), "{shown}");
        }
    }

    #[test]
    fn an_absent_aggregate_is_a_404_naming_the_resource_as_before() {
        let absent: Vec<(DomainError, &str)> = vec![
            (UserError::NotFound.into(), "user"),
            (FamilyError::NotFound.into(), "family"),
            (PatientError::NotFound.into(), "patient"),
            (SubscriptionError::NotFound.into(), "subscription"),
            (VisitError::NotFound.into(), "appointment"),
            (EvvExceptionError::NotFound.into(), "evv_exception"),
            (HealthRecordError::NotFound.into(), "health_record"),
            (OrderRequestError::NotFound.into(), "order_request"),
            (MedicalOrderError::NotFound.into(), "medical_order"),
            (HospitalError::NotFound.into(), "hospital"),
            (HospitalError::DepartmentNotFound.into(), "department"),
            (HospitalError::DoctorNotFound.into(), "doctor"),
            (SlotError::NotFound.into(), "slot"),
            (BookingError::NotFound.into(), "hospital_appointment"),
            (AlertError::NotFound.into(), "alert"),
        ];
        for (refusal, what) in absent {
            assert_eq!(answer(refusal), (404, "not_found", format!("资源不存在：{what}")));
        }
    }

    #[test]
    fn a_field_refused_by_an_aggregate_is_a_400_naming_the_field() {
        let refused: DomainError =
            VisitError::from(Invalid::field("scheduled_time", "预约时间不能早于当前时间")).into();
        assert_eq!(
            answer(refused),
            (400, "validation_failed", "参数校验失败：scheduled_time".to_string())
        );
    }
}
