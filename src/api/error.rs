//! The one place where errors become HTTP responses: every [`AppError`] gets
//! its status here, and the envelope `{code, message, data: null, error}` (with
//! `details` where the client can act on them) carries the stable `error`
//! code and the Chinese message the application chose (`crate::app::error`).
//! Internal errors are logged with their cause chain and reach the client only
//! as `internal` plus the request id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::error::AppError;
use crate::app::refusal::WechatRefusal;
use crate::telemetry::current_request_id;

/// An [`AppError`] as an HTTP answer: what handlers and extractors return.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

/// Everything a use case's error converts from converts here too, so a
/// handler's `?` works on either.
macro_rules! via_app_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError(AppError::from(e))
            }
        }
    )*};
}

via_app_error!(
    domain::Invalid,
    domain::DomainError,
    domain::hospital::HospitalError,
    crate::app::refusal::Refusal,
    WechatRefusal,
    crate::store::CommandError,
    sqlx::Error,
);

/// The HTTP status of each error.
pub fn status(e: &AppError) -> StatusCode {
    match e {
        AppError::Validation(_) => StatusCode::BAD_REQUEST,
        AppError::Unauthorized => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::VersionConflict { .. } | AppError::Rule(_) | AppError::Refused(_) => StatusCode::CONFLICT,
        AppError::Wechat(w) => match w {
            WechatRefusal::NotConfigured => StatusCode::NOT_FOUND,
            WechatRefusal::NotBound | WechatRefusal::CodeInvalid => StatusCode::UNAUTHORIZED,
            WechatRefusal::AlreadyBound => StatusCode::CONFLICT,
            WechatRefusal::Unavailable => StatusCode::BAD_GATEWAY,
        },
        AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// Status and stable `error` string.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        (status(&self.0), self.0.code())
    }

    pub fn message(&self) -> String {
        self.0.message()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        let (status, error) = self.parts();
        let mut body = json!({
            "code": status.as_u16(),
            "message": self.message(),
            "data": Value::Null,
            "error": error,
        });
        match &self.0 {
            AppError::Validation(fields) => body["details"] = json!(fields),
            AppError::VersionConflict { actual, .. } => body["details"] = json!({ "current_version": actual }),
            AppError::RateLimited { retry_after } => {
                body["details"] = json!({ "retry_after": retry_after });
                return HttpResponse::build(status)
                    .insert_header((actix_web::http::header::RETRY_AFTER, retry_after.to_string()))
                    .json(body);
            }
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                body["request_id"] = json!(current_request_id());
            }
            _ => {}
        }
        HttpResponse::build(status).json(body)
    }
}

/// The answer of an error outside a handler (middleware, default routes).
pub fn respond(e: AppError) -> HttpResponse {
    ApiError(e).error_response()
}

/// The success envelope ([`crate::api::Envelope`]), serialized straight from
/// `data`: not through a `serde_json::Value` tree first, which allocated every
/// key and text of an answer a second time (a list of twenty households, or a
/// recorder's day, as maps of strings) only to write it out and free it.
#[derive(Serialize)]
struct Success<'a, T> {
    code: u16,
    message: &'a str,
    data: T,
}

/// The success envelope.
pub fn envelope<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Success {
        code: status.as_u16(),
        message: "成功",
        data,
    })
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
    use crate::app::refusal::Refusal;
    use domain::alert::AlertStatus;
    use domain::alert::{AlertAction, AlertError};
    use domain::booking::BookingStatus;
    use domain::booking::{BookingAction, BookingError};
    use domain::compliance::NotCompliant;
    use domain::evv::EvvExceptionError;
    use domain::family::FamilyError;
    use domain::file::FileError;
    use domain::health_record::HealthRecordError;
    use domain::hospital::{HospitalError, SlotError};
    use domain::order::{MedicalOrderError, OrderAction, OrderRequestError};
    use domain::order::{OrderStatus, RequestStatus};
    use domain::package::PackageError;
    use domain::patient::PatientError;
    use domain::subscription::SubscriptionError;
    use domain::user::UserError;
    use domain::visit::VisitStatus;
    use domain::visit::{VisitAction, VisitError};
    use domain::{DomainError, Invalid};

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
            (R::DuplicateCommand, "该离线命令已执行"),
            (R::RequestInProgress, "相同幂等键的请求仍在处理中"),
            (R::UndoFailed, "操作未能完整撤销，请稍后重试"),
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
            (FileError::NotFound.into(), "file"),
            (domain::push::PushError::NotFound.into(), "push"),
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

    #[test]
    fn each_wechat_refusal_has_its_status_and_code() {
        use crate::app::refusal::WechatRefusal as W;
        let cases = [
            (W::NotConfigured, 404, "wechat_not_configured"),
            (W::NotBound, 401, "wechat_not_bound"),
            (W::CodeInvalid, 401, "wechat_code_invalid"),
            (W::AlreadyBound, 409, "wechat_already_bound"),
            (W::Unavailable, 502, "wechat_unavailable"),
        ];
        for (refusal, code, error) in cases {
            let api = ApiError::from(refusal);
            let (status, e) = api.parts();
            assert_eq!((status.as_u16(), e), (code, error));
            assert_eq!(api.message(), refusal.words());
        }
    }

    /// Use cases tell refusals (409) apart from every other failure by kind.
    #[test]
    fn only_rules_and_refusals_are_refusals() {
        assert!(AppError::from(DomainError::from(SlotError::Full)).is_refusal());
        assert!(AppError::from(Refusal::SlotsFull).is_refusal());
        assert!(!AppError::from(DomainError::from(SlotError::NotFound)).is_refusal());
        assert!(!AppError::from(DomainError::from(VisitError::from(Invalid::field("x", "y")))).is_refusal());
        assert!(!AppError::VersionConflict { expected: 1, actual: 2 }.is_refusal());
    }
}
