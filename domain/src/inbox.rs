//! A user's notification inbox. Notifications themselves are derived from other
//! events (an order request tells its doctor, an order tells the recorder);
//! what the user does with them — reading — is this aggregate's only command.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

#[derive(Debug, Clone, PartialEq)]
pub enum InboxCommand {
    MarkRead { notification_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InboxEvent {
    NotificationRead { notification_id: String },
}

impl DomainEvent for InboxEvent {
    fn event_type(&self) -> String {
        "NotificationRead".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Inbox {
    pub read: BTreeSet<String>,
}

impl Aggregate for Inbox {
    const TYPE: &'static str = "inbox";
    type Command = InboxCommand;
    type Event = InboxEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: InboxCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        let InboxCommand::MarkRead { notification_id } = command;
        if !self.read.contains(&notification_id) {
            sink.write(InboxEvent::NotificationRead { notification_id }, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: InboxEvent) {
        let InboxEvent::NotificationRead { notification_id } = event;
        self.read.insert(notification_id);
    }
}
