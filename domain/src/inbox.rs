//! A user's notification inbox. Notifications themselves are derived from other
//! events (an order request tells its doctor, an order tells the recorder);
//! what the user does with them — reading — is this aggregate's only command.

use std::collections::BTreeSet;
use std::convert::Infallible;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Whether the user has read a notification (it is read once the inbox
/// records `NotificationRead` for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    #[default]
    Unread,
    Read,
}

impl NotificationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unread => "unread",
            Self::Read => "read",
        }
    }
}

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
    /// Reading is always allowed (reading twice changes nothing), so an
    /// inbox refuses no command.
    type Error = Infallible;
    type Services = ();

    async fn handle(&mut self, command: InboxCommand, _: &(), sink: &EventSink<Self>) -> Result<(), Infallible> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Inbox>;

    fn mark_read(id: &str) -> InboxCommand {
        InboxCommand::MarkRead {
            notification_id: id.into(),
        }
    }
    fn read(id: &str) -> InboxEvent {
        InboxEvent::NotificationRead {
            notification_id: id.into(),
        }
    }

    #[test]
    fn it_should_mark_a_notification_read() {
        T::with(())
            .given_no_previous_events()
            .when(mark_read("order:1"))
            .then_expect_events(vec![read("order:1")]);
    }

    #[test]
    fn it_should_record_nothing_when_a_notification_is_read_again() {
        T::with(())
            .given(vec![read("order:1")])
            .when(mark_read("order:1"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_mark_each_notification_on_its_own() {
        T::with(())
            .given(vec![read("order:1")])
            .when(mark_read("order:2"))
            .then_expect_events(vec![read("order:2")]);
    }
}
