//! Medical orders: a request for a doctor's order (made by a recorder, or raised
//! by itself when vitals cross alert thresholds), and the order a doctor issues.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{HealthRecordId, MedicalOrderId, OrderRequestId, PatientId, UserId};
use crate::vitals::{AlertReason, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDetails {
    pub health_record_id: HealthRecordId,
    pub patient_id: PatientId,
    pub doctor_id: UserId,
    /// The recorder who asked; `None` when the alert rules raised it.
    pub requested_by: Option<UserId>,
    /// The patient's recorder, told when the order arrives.
    pub recorder_id: UserId,
    pub reason: Option<String>,
    pub alerts: Vec<AlertReason>,
}

impl RequestDetails {
    pub fn abnormal(&self) -> bool {
        !self.alerts.is_empty()
    }
    pub fn urgent(&self) -> bool {
        self.alerts.iter().any(|a| a.severity == Severity::Urgent)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    #[default]
    Open,
    Fulfilled,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderRequestCommand {
    Open(RequestDetails),
    Fulfil { order_id: MedicalOrderId },
    Cancel { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderRequestEvent {
    OrderRequested(RequestDetails),
    OrderRequestFulfilled { order_id: MedicalOrderId },
    OrderRequestCancelled { reason: Option<String> },
}

impl DomainEvent for OrderRequestEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrderRequested(_) => "OrderRequested",
            Self::OrderRequestFulfilled { .. } => "OrderRequestFulfilled",
            Self::OrderRequestCancelled { .. } => "OrderRequestCancelled",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct OrderRequest {
    pub details: Option<RequestDetails>,
    pub status: RequestStatus,
}

impl Aggregate for OrderRequest {
    const TYPE: &'static str = "order_request";
    type Command = OrderRequestCommand;
    type Event = OrderRequestEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: OrderRequestCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DomainError> {
        let event = match (&self.details, command) {
            (Some(_), OrderRequestCommand::Open(_)) => return Err(DomainError::conflict("医嘱申请已存在")),
            (None, OrderRequestCommand::Open(d)) => OrderRequestEvent::OrderRequested(d),
            (None, _) => return Err(DomainError::NotFound("order_request")),
            (Some(_), OrderRequestCommand::Fulfil { order_id }) => match self.status {
                RequestStatus::Open => OrderRequestEvent::OrderRequestFulfilled { order_id },
                _ => return Err(DomainError::conflict("医嘱申请已处理")),
            },
            (Some(_), OrderRequestCommand::Cancel { reason }) => match self.status {
                RequestStatus::Open => OrderRequestEvent::OrderRequestCancelled { reason },
                _ => return Err(DomainError::conflict("医嘱申请已处理")),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: OrderRequestEvent) {
        match event {
            OrderRequestEvent::OrderRequested(d) => self.details = Some(d),
            OrderRequestEvent::OrderRequestFulfilled { .. } => self.status = RequestStatus::Fulfilled,
            OrderRequestEvent::OrderRequestCancelled { .. } => self.status = RequestStatus::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Medication,
    Examination,
    Lifestyle,
    Followup,
}

impl OrderType {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "medication" => Ok(Self::Medication),
            "examination" => Ok(Self::Examination),
            "lifestyle" => Ok(Self::Lifestyle),
            "followup" => Ok(Self::Followup),
            _ => Err("应为medication、examination、lifestyle或followup".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Medication => "medication",
            Self::Examination => "examination",
            Self::Lifestyle => "lifestyle",
            Self::Followup => "followup",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDetails {
    pub patient_id: PatientId,
    pub doctor_id: UserId,
    /// The patient's recorder at the time, notified of the new order.
    pub recorder_id: Option<UserId>,
    pub request_id: Option<OrderRequestId>,
    pub health_record_id: Option<HealthRecordId>,
    pub order_type: OrderType,
    pub content: String,
    pub dosage: Option<String>,
    pub frequency: Option<String>,
    pub duration: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Active,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MedicalOrderCommand {
    Issue(OrderDetails),
    Complete,
    Cancel { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MedicalOrderEvent {
    MedicalOrderIssued(OrderDetails),
    MedicalOrderCompleted,
    MedicalOrderCancelled { reason: Option<String> },
}

impl DomainEvent for MedicalOrderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::MedicalOrderIssued(_) => "MedicalOrderIssued",
            Self::MedicalOrderCompleted => "MedicalOrderCompleted",
            Self::MedicalOrderCancelled { .. } => "MedicalOrderCancelled",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MedicalOrder {
    pub details: Option<OrderDetails>,
    pub status: OrderStatus,
}

impl Aggregate for MedicalOrder {
    const TYPE: &'static str = "medical_order";
    type Command = MedicalOrderCommand;
    type Event = MedicalOrderEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: MedicalOrderCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DomainError> {
        let event = match (&self.details, command) {
            (Some(_), MedicalOrderCommand::Issue(_)) => return Err(DomainError::conflict("医嘱已存在")),
            (None, MedicalOrderCommand::Issue(d)) => {
                if d.content.trim().is_empty() {
                    return Err(DomainError::field("content", "不能为空"));
                }
                MedicalOrderEvent::MedicalOrderIssued(d)
            }
            (None, _) => return Err(DomainError::NotFound("medical_order")),
            (Some(_), MedicalOrderCommand::Complete) => match self.status {
                OrderStatus::Active => MedicalOrderEvent::MedicalOrderCompleted,
                _ => return Err(DomainError::conflict("医嘱已结束，不能完成")),
            },
            (Some(_), MedicalOrderCommand::Cancel { reason }) => match self.status {
                OrderStatus::Active => MedicalOrderEvent::MedicalOrderCancelled { reason },
                _ => return Err(DomainError::conflict("医嘱已结束，不能取消")),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: MedicalOrderEvent) {
        match event {
            MedicalOrderEvent::MedicalOrderIssued(d) => self.details = Some(d),
            MedicalOrderEvent::MedicalOrderCompleted => self.status = OrderStatus::Completed,
            MedicalOrderEvent::MedicalOrderCancelled { .. } => self.status = OrderStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn issued() -> MedicalOrderEvent {
        MedicalOrderEvent::MedicalOrderIssued(OrderDetails {
            patient_id: PatientId::default(),
            doctor_id: UserId::default(),
            recorder_id: None,
            request_id: None,
            health_record_id: None,
            order_type: OrderType::Medication,
            content: "氨氯地平 5mg".into(),
            dosage: None,
            frequency: None,
            duration: None,
            notes: None,
        })
    }

    #[test]
    fn it_should_not_complete_a_cancelled_order() {
        TestFramework::<MedicalOrder>::with(())
            .given(vec![
                issued(),
                MedicalOrderEvent::MedicalOrderCancelled { reason: None },
            ])
            .when(MedicalOrderCommand::Complete)
            .then_expect_error(DomainError::conflict("医嘱已结束，不能完成"));
    }

    #[test]
    fn it_should_not_fulfil_a_request_twice() {
        let details = RequestDetails {
            health_record_id: HealthRecordId::default(),
            patient_id: PatientId::default(),
            doctor_id: UserId::default(),
            requested_by: None,
            recorder_id: UserId::default(),
            reason: None,
            alerts: vec![],
        };
        let order_id = MedicalOrderId::default();
        TestFramework::<OrderRequest>::with(())
            .given(vec![
                OrderRequestEvent::OrderRequested(details),
                OrderRequestEvent::OrderRequestFulfilled { order_id },
            ])
            .when(OrderRequestCommand::Fulfil { order_id })
            .then_expect_error(DomainError::conflict("医嘱申请已处理"));
    }
}
