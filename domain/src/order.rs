//! Medical orders: a request for a doctor's order (made by a recorder, or raised
//! by itself when vitals cross alert thresholds), and the order a doctor issues.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, HealthRecordId, MedicalOrderId, OrderRequestId, PatientId, UserId};
use crate::validation::Invalid;
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
    /// The alert this request was raised with (none for a recorder's own
    /// request, and for requests recorded before alerts existed).
    #[serde(default)]
    pub alert_id: Option<AlertId>,
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

impl RequestStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
        }
    }
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

/// Every way an order request refuses a command. The server's error module
/// gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderRequestError {
    /// No request was opened under this id (404).
    #[error("no such order request")]
    NotFound,
    /// A second request under the same id (409): an alert raises its request
    /// at most once, so this is how the second raiser learns it was first.
    #[error("the order request already exists")]
    AlreadyExists,
    /// A request is fulfilled or cancelled once (409).
    #[error("the order request is already {status:?}")]
    AlreadyHandled { status: RequestStatus },
}

impl Aggregate for OrderRequest {
    const TYPE: &'static str = "order_request";
    type Command = OrderRequestCommand;
    type Event = OrderRequestEvent;
    type Error = OrderRequestError;
    type Services = ();

    async fn handle(
        &mut self,
        command: OrderRequestCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), OrderRequestError> {
        let handled = OrderRequestError::AlreadyHandled { status: self.status };
        let event = match (&self.details, command) {
            (Some(_), OrderRequestCommand::Open(_)) => return Err(OrderRequestError::AlreadyExists),
            (None, OrderRequestCommand::Open(d)) => OrderRequestEvent::OrderRequested(d),
            (None, _) => return Err(OrderRequestError::NotFound),
            (Some(_), OrderRequestCommand::Fulfil { order_id }) => match self.status {
                RequestStatus::Open => OrderRequestEvent::OrderRequestFulfilled { order_id },
                _ => return Err(handled),
            },
            (Some(_), OrderRequestCommand::Cancel { reason }) => match self.status {
                RequestStatus::Open => OrderRequestEvent::OrderRequestCancelled { reason },
                _ => return Err(handled),
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

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
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

/// What a command asks of an active order; names the refused step in
/// [`MedicalOrderError::IllegalTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Complete,
    Cancel,
}

/// Every way a medical order refuses a command. The server's error module
/// gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MedicalOrderError {
    /// An order without content (400, `content`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No order was issued under this id (404).
    #[error("no such medical order")]
    NotFound,
    /// A second issue under the same id (409).
    #[error("the medical order already exists")]
    AlreadyExists,
    /// Only an active order is completed or cancelled; both end it (409).
    #[error("a {from:?} order cannot take {action:?}")]
    IllegalTransition { from: OrderStatus, action: OrderAction },
}

impl Aggregate for MedicalOrder {
    const TYPE: &'static str = "medical_order";
    type Command = MedicalOrderCommand;
    type Event = MedicalOrderEvent;
    type Error = MedicalOrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: MedicalOrderCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), MedicalOrderError> {
        let illegal = |action| {
            Err(MedicalOrderError::IllegalTransition {
                from: self.status,
                action,
            })
        };
        let event = match (&self.details, command) {
            (Some(_), MedicalOrderCommand::Issue(_)) => return Err(MedicalOrderError::AlreadyExists),
            (None, MedicalOrderCommand::Issue(d)) => {
                if d.content.trim().is_empty() {
                    return Err(Invalid::field("content", "不能为空").into());
                }
                MedicalOrderEvent::MedicalOrderIssued(d)
            }
            (None, _) => return Err(MedicalOrderError::NotFound),
            (Some(_), MedicalOrderCommand::Complete) => match self.status {
                OrderStatus::Active => MedicalOrderEvent::MedicalOrderCompleted,
                _ => return illegal(OrderAction::Complete),
            },
            (Some(_), MedicalOrderCommand::Cancel { reason }) => match self.status {
                OrderStatus::Active => MedicalOrderEvent::MedicalOrderCancelled { reason },
                _ => return illegal(OrderAction::Cancel),
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

    type R = TestFramework<OrderRequest>;
    type M = TestFramework<MedicalOrder>;

    #[test]
    fn statuses_read_as_they_serialize() {
        for s in [RequestStatus::Open, RequestStatus::Fulfilled, RequestStatus::Cancelled] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [OrderStatus::Active, OrderStatus::Completed, OrderStatus::Cancelled] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    fn request() -> RequestDetails {
        RequestDetails {
            health_record_id: HealthRecordId::default(),
            patient_id: PatientId::default(),
            doctor_id: UserId::default(),
            requested_by: None,
            recorder_id: UserId::default(),
            reason: None,
            alerts: vec![],
            alert_id: None,
        }
    }
    fn requested() -> OrderRequestEvent {
        OrderRequestEvent::OrderRequested(request())
    }
    fn fulfil() -> OrderRequestCommand {
        OrderRequestCommand::Fulfil {
            order_id: MedicalOrderId::default(),
        }
    }
    fn fulfilled() -> OrderRequestEvent {
        OrderRequestEvent::OrderRequestFulfilled {
            order_id: MedicalOrderId::default(),
        }
    }

    #[test]
    fn it_should_open_an_order_request() {
        R::with(())
            .given_no_previous_events()
            .when(OrderRequestCommand::Open(request()))
            .then_expect_events(vec![requested()]);
    }

    #[test]
    fn it_should_not_open_the_same_request_twice() {
        R::with(())
            .given(vec![requested()])
            .when(OrderRequestCommand::Open(request()))
            .then_expect_error(OrderRequestError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_to_fulfil_or_cancel_a_request_never_opened() {
        for command in [fulfil(), OrderRequestCommand::Cancel { reason: None }] {
            R::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(OrderRequestError::NotFound);
        }
    }

    #[test]
    fn it_should_fulfil_an_open_request_with_its_order() {
        R::with(())
            .given(vec![requested()])
            .when(fulfil())
            .then_expect_events(vec![fulfilled()]);
    }

    #[test]
    fn it_should_not_fulfil_a_request_twice() {
        R::with(())
            .given(vec![requested(), fulfilled()])
            .when(fulfil())
            .then_expect_error(OrderRequestError::AlreadyHandled {
                status: RequestStatus::Fulfilled,
            });
    }

    #[test]
    fn it_should_cancel_an_open_request() {
        R::with(())
            .given(vec![requested()])
            .when(OrderRequestCommand::Cancel {
                reason: Some("已电话处理".into()),
            })
            .then_expect_events(vec![OrderRequestEvent::OrderRequestCancelled {
                reason: Some("已电话处理".into()),
            }]);
    }

    #[test]
    fn it_should_not_fulfil_a_cancelled_request() {
        R::with(())
            .given(vec![
                requested(),
                OrderRequestEvent::OrderRequestCancelled { reason: None },
            ])
            .when(fulfil())
            .then_expect_error(OrderRequestError::AlreadyHandled {
                status: RequestStatus::Cancelled,
            });
    }

    #[test]
    fn it_should_not_cancel_a_fulfilled_request() {
        R::with(())
            .given(vec![requested(), fulfilled()])
            .when(OrderRequestCommand::Cancel { reason: None })
            .then_expect_error(OrderRequestError::AlreadyHandled {
                status: RequestStatus::Fulfilled,
            });
    }

    fn order() -> OrderDetails {
        OrderDetails {
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
        }
    }
    fn issued() -> MedicalOrderEvent {
        MedicalOrderEvent::MedicalOrderIssued(order())
    }
    fn cancelled() -> MedicalOrderEvent {
        MedicalOrderEvent::MedicalOrderCancelled { reason: None }
    }
    fn illegal(from: OrderStatus, action: OrderAction) -> MedicalOrderError {
        MedicalOrderError::IllegalTransition { from, action }
    }

    #[test]
    fn it_should_issue_an_order() {
        M::with(())
            .given_no_previous_events()
            .when(MedicalOrderCommand::Issue(order()))
            .then_expect_events(vec![issued()]);
    }

    #[test]
    fn it_should_not_issue_an_order_without_content() {
        let blank = OrderDetails {
            content: "  ".into(),
            ..order()
        };
        let r = M::with(())
            .given_no_previous_events()
            .when(MedicalOrderCommand::Issue(blank))
            .inspect_result();
        assert!(matches!(r, Err(MedicalOrderError::Validation(i)) if i.names("content")));
    }

    #[test]
    fn it_should_not_issue_the_same_order_twice() {
        M::with(())
            .given(vec![issued()])
            .when(MedicalOrderCommand::Issue(order()))
            .then_expect_error(MedicalOrderError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_to_complete_or_cancel_an_order_never_issued() {
        for command in [
            MedicalOrderCommand::Complete,
            MedicalOrderCommand::Cancel { reason: None },
        ] {
            M::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(MedicalOrderError::NotFound);
        }
    }

    #[test]
    fn it_should_complete_an_active_order() {
        M::with(())
            .given(vec![issued()])
            .when(MedicalOrderCommand::Complete)
            .then_expect_events(vec![MedicalOrderEvent::MedicalOrderCompleted]);
    }

    #[test]
    fn it_should_not_complete_a_cancelled_order() {
        M::with(())
            .given(vec![issued(), cancelled()])
            .when(MedicalOrderCommand::Complete)
            .then_expect_error(illegal(OrderStatus::Cancelled, OrderAction::Complete));
    }

    #[test]
    fn it_should_cancel_an_active_order_with_its_reason() {
        M::with(())
            .given(vec![issued()])
            .when(MedicalOrderCommand::Cancel {
                reason: Some("血压已平稳".into()),
            })
            .then_expect_events(vec![MedicalOrderEvent::MedicalOrderCancelled {
                reason: Some("血压已平稳".into()),
            }]);
    }

    #[test]
    fn it_should_not_cancel_a_completed_order() {
        M::with(())
            .given(vec![issued(), MedicalOrderEvent::MedicalOrderCompleted])
            .when(MedicalOrderCommand::Cancel { reason: None })
            .then_expect_error(illegal(OrderStatus::Completed, OrderAction::Cancel));
    }
}
