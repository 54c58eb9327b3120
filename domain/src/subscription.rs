//! A patient's subscription to a service package, assigned to one recorder.
//! The assignment is what gives a recorder access to a family.

use chrono::{Days, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::compliance::{NotCompliant, RecorderStanding};
use crate::ids::{PackageId, PatientId, UserId};
use crate::validation::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    #[default]
    Active,
    Paused,
    Cancelled,
    /// Past its end date (set by the `subscription_expiry` job, never by a request).
    Expired,
}

impl SubscriptionStatus {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err("应为active、paused或cancelled".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Unpaid,
    Paid,
    Refunded,
}

impl PaymentStatus {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "paid" => Ok(Self::Paid),
            "unpaid" => Ok(Self::Unpaid),
            "refunded" => Ok(Self::Refunded),
            _ => Err("应为paid、unpaid或refunded".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Unpaid => "unpaid",
            Self::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionTerms {
    pub patient_id: PatientId,
    pub package_id: PackageId,
    pub recorder_id: UserId,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionCommand {
    /// `duration_days` comes from the package at the time of subscribing.
    Create {
        patient_id: PatientId,
        package_id: PackageId,
        recorder_id: UserId,
        start_date: NaiveDate,
        duration_days: u32,
        /// The recorder's standing today: only a compliant recorder is given
        /// a new subscription.
        recorder: RecorderStanding,
    },
    ChangeStatus {
        status: SubscriptionStatus,
    },
    ChangePayment {
        payment_status: PaymentStatus,
    },
    /// The subscription ended before `today` (a local date): it expires.
    Expire {
        today: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    SubscriptionCreated(SubscriptionTerms),
    SubscriptionStatusChanged {
        status: SubscriptionStatus,
        previous: SubscriptionStatus,
    },
    SubscriptionPaymentChanged {
        payment_status: PaymentStatus,
    },
    /// Its end date passed; `previous` is the status it had.
    SubscriptionExpired {
        end_date: NaiveDate,
        previous: SubscriptionStatus,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SubscriptionCreated(_) => "SubscriptionCreated",
            Self::SubscriptionStatusChanged { .. } => "SubscriptionStatusChanged",
            Self::SubscriptionPaymentChanged { .. } => "SubscriptionPaymentChanged",
            Self::SubscriptionExpired { .. } => "SubscriptionExpired",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Subscription {
    pub terms: Option<SubscriptionTerms>,
    pub status: SubscriptionStatus,
    pub payment_status: PaymentStatus,
}

/// Every way a subscription refuses a command. The server's error module
/// gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscriptionError {
    /// A start date whose end falls outside the calendar (400, `start_date`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No subscription was created under this id (404).
    #[error("no such subscription")]
    NotFound,
    /// A second creation under the same id (409).
    #[error("the subscription already exists")]
    AlreadyExists,
    /// Cancelling is final: no status change after it (409).
    #[error("a cancelled subscription cannot change status")]
    Cancelled,
    /// An expired subscription is over: no status change after it (409).
    #[error("an expired subscription cannot change status")]
    Expired,
    /// Expiring a subscription whose end date has not passed (409).
    #[error("the subscription has not ended yet")]
    NotEnded,
    /// Only what was paid can be refunded (409).
    #[error("an unpaid subscription cannot be refunded")]
    RefundUnpaid,
    /// The recorder's certificate expired or they are off duty (409, naming why).
    #[error(transparent)]
    RecorderNotCompliant(#[from] NotCompliant),
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: SubscriptionCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), SubscriptionError> {
        if self.terms.is_none() && !matches!(command, SubscriptionCommand::Create { .. }) {
            return Err(SubscriptionError::NotFound);
        }
        let event = match command {
            SubscriptionCommand::Create { .. } if self.terms.is_some() => return Err(SubscriptionError::AlreadyExists),
            SubscriptionCommand::Create {
                patient_id,
                package_id,
                recorder_id,
                start_date,
                duration_days,
                recorder,
            } => {
                recorder.ensure_compliant()?;
                let end_date = start_date
                    .checked_add_days(Days::new(u64::from(duration_days)))
                    .ok_or_else(|| Invalid::field("start_date", "日期超出范围"))?;
                SubscriptionEvent::SubscriptionCreated(SubscriptionTerms {
                    patient_id,
                    package_id,
                    recorder_id,
                    start_date,
                    end_date,
                })
            }
            SubscriptionCommand::ChangeStatus { status } => {
                if status == self.status {
                    return Ok(());
                }
                if self.status == SubscriptionStatus::Cancelled {
                    return Err(SubscriptionError::Cancelled);
                }
                if self.status == SubscriptionStatus::Expired {
                    return Err(SubscriptionError::Expired);
                }
                SubscriptionEvent::SubscriptionStatusChanged {
                    status,
                    previous: self.status,
                }
            }
            SubscriptionCommand::ChangePayment { payment_status } => {
                if payment_status == self.payment_status {
                    return Ok(());
                }
                if payment_status == PaymentStatus::Refunded && self.payment_status != PaymentStatus::Paid {
                    return Err(SubscriptionError::RefundUnpaid);
                }
                SubscriptionEvent::SubscriptionPaymentChanged { payment_status }
            }
            SubscriptionCommand::Expire { today } => {
                let end_date = self.terms.as_ref().map_or(today, |t| t.end_date);
                match self.status {
                    SubscriptionStatus::Expired => return Ok(()),
                    SubscriptionStatus::Cancelled => return Err(SubscriptionError::Cancelled),
                    _ if end_date >= today => return Err(SubscriptionError::NotEnded),
                    previous => SubscriptionEvent::SubscriptionExpired { end_date, previous },
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: SubscriptionEvent) {
        match event {
            SubscriptionEvent::SubscriptionCreated(t) => self.terms = Some(t),
            SubscriptionEvent::SubscriptionStatusChanged { status, .. } => self.status = status,
            SubscriptionEvent::SubscriptionPaymentChanged { payment_status } => self.payment_status = payment_status,
            SubscriptionEvent::SubscriptionExpired { .. } => self.status = SubscriptionStatus::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Subscription>;

    fn created() -> SubscriptionEvent {
        SubscriptionEvent::SubscriptionCreated(SubscriptionTerms {
            patient_id: PatientId::default(),
            package_id: PackageId::default(),
            recorder_id: UserId::default(),
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        })
    }
    fn create(start_date: NaiveDate) -> SubscriptionCommand {
        create_for(start_date, RecorderStanding::good(start_date))
    }
    fn create_for(start_date: NaiveDate, recorder: RecorderStanding) -> SubscriptionCommand {
        SubscriptionCommand::Create {
            patient_id: PatientId::default(),
            package_id: PackageId::default(),
            recorder_id: UserId::default(),
            start_date,
            duration_days: 30,
            recorder,
        }
    }
    fn jan(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, day).unwrap()
    }

    #[test]
    fn it_should_not_assign_a_subscription_to_a_recorder_whose_certificate_expired() {
        let standing = RecorderStanding {
            cert_expiry_date: Some(jan(9)),
            on_duty: true,
            today: jan(10),
        };
        T::with(())
            .given_no_previous_events()
            .when(create_for(jan(10), standing))
            .then_expect_error(SubscriptionError::RecorderNotCompliant(
                NotCompliant::CertificateExpired { expired_on: jan(9) },
            ));
    }

    #[test]
    fn it_should_assign_a_subscription_to_a_recorder_whose_certificate_expires_today() {
        let standing = RecorderStanding {
            cert_expiry_date: Some(jan(1)),
            on_duty: true,
            today: jan(1),
        };
        T::with(())
            .given_no_previous_events()
            .when(create_for(jan(1), standing))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn it_should_not_assign_a_subscription_to_a_recorder_off_duty() {
        let standing = RecorderStanding {
            on_duty: false,
            ..RecorderStanding::good(jan(1))
        };
        T::with(())
            .given_no_previous_events()
            .when(create_for(jan(1), standing))
            .then_expect_error(SubscriptionError::RecorderNotCompliant(NotCompliant::OffDuty));
    }
    fn status_changed(status: SubscriptionStatus, previous: SubscriptionStatus) -> SubscriptionEvent {
        SubscriptionEvent::SubscriptionStatusChanged { status, previous }
    }
    fn change_status(status: SubscriptionStatus) -> SubscriptionCommand {
        SubscriptionCommand::ChangeStatus { status }
    }
    fn change_payment(payment_status: PaymentStatus) -> SubscriptionCommand {
        SubscriptionCommand::ChangePayment { payment_status }
    }
    fn paid() -> SubscriptionEvent {
        SubscriptionEvent::SubscriptionPaymentChanged {
            payment_status: PaymentStatus::Paid,
        }
    }

    #[test]
    fn it_should_end_duration_days_after_the_start() {
        T::with(())
            .given_no_previous_events()
            .when(create(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn it_should_refuse_a_start_date_whose_end_is_past_the_calendar() {
        let r = T::with(())
            .given_no_previous_events()
            .when(create(NaiveDate::MAX))
            .inspect_result();
        assert!(matches!(r, Err(SubscriptionError::Validation(i)) if i.names("start_date")));
    }

    #[test]
    fn it_should_not_create_a_subscription_twice() {
        T::with(())
            .given(vec![created()])
            .when(create(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()))
            .then_expect_error(SubscriptionError::AlreadyExists);
    }

    #[test]
    fn it_should_not_change_a_subscription_that_does_not_exist() {
        for command in [
            change_status(SubscriptionStatus::Paused),
            change_payment(PaymentStatus::Paid),
        ] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(SubscriptionError::NotFound);
        }
    }

    #[test]
    fn it_should_pause_an_active_subscription_and_remember_the_previous_status() {
        T::with(())
            .given(vec![created()])
            .when(change_status(SubscriptionStatus::Paused))
            .then_expect_events(vec![status_changed(
                SubscriptionStatus::Paused,
                SubscriptionStatus::Active,
            )]);
    }

    #[test]
    fn it_should_record_nothing_when_the_status_does_not_change() {
        T::with(())
            .given(vec![created()])
            .when(change_status(SubscriptionStatus::Active))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_reactivate_a_cancelled_subscription() {
        T::with(())
            .given(vec![
                created(),
                status_changed(SubscriptionStatus::Cancelled, SubscriptionStatus::Active),
            ])
            .when(change_status(SubscriptionStatus::Active))
            .then_expect_error(SubscriptionError::Cancelled);
    }

    #[test]
    fn it_should_mark_a_subscription_paid() {
        T::with(())
            .given(vec![created()])
            .when(change_payment(PaymentStatus::Paid))
            .then_expect_events(vec![paid()]);
    }

    #[test]
    fn it_should_record_nothing_when_the_payment_status_does_not_change() {
        T::with(())
            .given(vec![created(), paid()])
            .when(change_payment(PaymentStatus::Paid))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_refund_a_paid_subscription() {
        T::with(())
            .given(vec![created(), paid()])
            .when(change_payment(PaymentStatus::Refunded))
            .then_expect_events(vec![SubscriptionEvent::SubscriptionPaymentChanged {
                payment_status: PaymentStatus::Refunded,
            }]);
    }

    fn expired() -> SubscriptionEvent {
        SubscriptionEvent::SubscriptionExpired {
            end_date: jan(31),
            previous: SubscriptionStatus::Active,
        }
    }

    #[test]
    fn it_should_expire_a_subscription_the_day_after_its_end_date() {
        T::with(())
            .given(vec![created()])
            .when(SubscriptionCommand::Expire {
                today: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
            })
            .then_expect_events(vec![expired()]);
    }

    #[test]
    fn it_should_not_expire_a_subscription_on_its_end_date() {
        T::with(())
            .given(vec![created()])
            .when(SubscriptionCommand::Expire { today: jan(31) })
            .then_expect_error(SubscriptionError::NotEnded);
    }

    #[test]
    fn it_should_record_nothing_when_expiring_an_expired_subscription() {
        T::with(())
            .given(vec![created(), expired()])
            .when(SubscriptionCommand::Expire {
                today: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_expire_a_cancelled_subscription() {
        T::with(())
            .given(vec![
                created(),
                status_changed(SubscriptionStatus::Cancelled, SubscriptionStatus::Active),
            ])
            .when(SubscriptionCommand::Expire {
                today: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            })
            .then_expect_error(SubscriptionError::Cancelled);
    }

    #[test]
    fn it_should_not_reactivate_an_expired_subscription() {
        T::with(())
            .given(vec![created(), expired()])
            .when(change_status(SubscriptionStatus::Active))
            .then_expect_error(SubscriptionError::Expired);
    }

    #[test]
    fn it_should_not_refund_an_unpaid_subscription() {
        T::with(())
            .given(vec![created()])
            .when(change_payment(PaymentStatus::Refunded))
            .then_expect_error(SubscriptionError::RefundUnpaid);
    }
}
