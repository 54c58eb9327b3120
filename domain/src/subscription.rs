//! A patient's subscription to a service package, assigned to one recorder.
//! The assignment is what gives a recorder access to a family.

use chrono::{Days, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{PackageId, PatientId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    #[default]
    Active,
    Paused,
    Cancelled,
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
    },
    ChangeStatus {
        status: SubscriptionStatus,
    },
    ChangePayment {
        payment_status: PaymentStatus,
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
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SubscriptionCreated(_) => "SubscriptionCreated",
            Self::SubscriptionStatusChanged { .. } => "SubscriptionStatusChanged",
            Self::SubscriptionPaymentChanged { .. } => "SubscriptionPaymentChanged",
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

impl Aggregate for Subscription {
    const TYPE: &'static str = "subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: SubscriptionCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DomainError> {
        if self.terms.is_none() && !matches!(command, SubscriptionCommand::Create { .. }) {
            return Err(DomainError::NotFound("subscription"));
        }
        let event = match command {
            SubscriptionCommand::Create { .. } if self.terms.is_some() => {
                return Err(DomainError::conflict("订阅已存在"))
            }
            SubscriptionCommand::Create {
                patient_id,
                package_id,
                recorder_id,
                start_date,
                duration_days,
            } => {
                let end_date = start_date
                    .checked_add_days(Days::new(u64::from(duration_days)))
                    .ok_or_else(|| DomainError::field("start_date", "日期超出范围"))?;
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
                    return Err(DomainError::conflict("已取消的订阅不能再变更状态"));
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
                    return Err(DomainError::conflict("未付款的订阅不能退款"));
                }
                SubscriptionEvent::SubscriptionPaymentChanged { payment_status }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn created() -> SubscriptionEvent {
        SubscriptionEvent::SubscriptionCreated(SubscriptionTerms {
            patient_id: PatientId::new(),
            package_id: PackageId::new(),
            recorder_id: UserId::new(),
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        })
    }

    #[test]
    fn it_should_end_duration_days_after_the_start() {
        let (patient_id, package_id, recorder_id) = (PatientId::new(), PackageId::new(), UserId::new());
        TestFramework::<Subscription>::with(())
            .given_no_previous_events()
            .when(SubscriptionCommand::Create {
                patient_id,
                package_id,
                recorder_id,
                start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                duration_days: 30,
            })
            .then_expect_events(vec![SubscriptionEvent::SubscriptionCreated(SubscriptionTerms {
                patient_id,
                package_id,
                recorder_id,
                start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            })]);
    }

    #[test]
    fn it_should_not_reactivate_a_cancelled_subscription() {
        TestFramework::<Subscription>::with(())
            .given(vec![
                created(),
                SubscriptionEvent::SubscriptionStatusChanged {
                    status: SubscriptionStatus::Cancelled,
                    previous: SubscriptionStatus::Active,
                },
            ])
            .when(SubscriptionCommand::ChangeStatus {
                status: SubscriptionStatus::Active,
            })
            .then_expect_error(DomainError::conflict("已取消的订阅不能再变更状态"));
    }

    #[test]
    fn it_should_not_refund_an_unpaid_subscription() {
        TestFramework::<Subscription>::with(())
            .given(vec![created()])
            .when(SubscriptionCommand::ChangePayment {
                payment_status: PaymentStatus::Refunded,
            })
            .then_expect_error(DomainError::conflict("未付款的订阅不能退款"));
    }
}
