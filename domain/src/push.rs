//! A WeChat subscribe message for one notification and its recipient, from
//! queued to sent, skipped or given up. Its id is the notification's id (which
//! names one recipient), so a notification is pushed at most once.
//!
//! **At most once**: `PushAttempted` is recorded *before* the HTTP call and the
//! outcome after it. An attempt without an outcome (the process died during
//! the call) may or may not have reached the phone, so it is never repeated:
//! the aggregate refuses every further attempt. Only a *recorded* failure
//! allows the next attempt, and only at the number that follows it, so two
//! senders racing on one message cannot both send it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// What to send to whom: the recipient (the server looks up their openid at
/// send time), the notification kind, the template and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushMessage {
    pub user_id: UserId,
    /// The notification kind (`order_request`, `alert_escalated`, …).
    pub kind: String,
    pub template_id: String,
    /// Template key → value (no free text about patients: titles and times only).
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PushCommand {
    /// Queues the message (again: nothing happens).
    Queue(PushMessage),
    /// Says that send number `attempt` starts now.
    Attempt { attempt: u32 },
    /// The send in flight was accepted.
    RecordSent,
    /// The send in flight failed; `retry_at` is when to try again (None: give up).
    RecordFailed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// The message will not be sent (the user refused the subscription, or
    /// has no WeChat account bound any more).
    RecordSkipped { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PushEvent {
    PushQueued(PushMessage),
    PushAttempted {
        attempt: u32,
    },
    PushSent {
        attempt: u32,
    },
    PushFailed {
        attempt: u32,
        error: String,
        /// When the next attempt is due; absent when the message was given up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
    },
    PushSkipped {
        attempt: u32,
        reason: String,
    },
}

impl DomainEvent for PushEvent {
    fn event_type(&self) -> String {
        match self {
            PushEvent::PushQueued(_) => "PushQueued",
            PushEvent::PushAttempted { .. } => "PushAttempted",
            PushEvent::PushSent { .. } => "PushSent",
            PushEvent::PushFailed { .. } => "PushFailed",
            PushEvent::PushSkipped { .. } => "PushSkipped",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Never queued.
    #[default]
    New,
    Queued,
    /// Attempted, outcome unknown.
    InFlight,
    /// Failed, to be tried again.
    Failed,
    Sent,
    Skipped,
    /// Failed for the last time.
    GivenUp,
}

impl PushStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PushStatus::New => "new",
            PushStatus::Queued => "queued",
            PushStatus::InFlight => "in_flight",
            PushStatus::Failed => "failed",
            PushStatus::Sent => "sent",
            PushStatus::Skipped => "skipped",
            PushStatus::GivenUp => "given_up",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Push {
    pub message: Option<PushMessage>,
    pub status: PushStatus,
    /// Attempts started so far.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    /// Nothing was queued under this id.
    #[error("no such push")]
    NotFound,
    /// An attempt has no recorded outcome: it may have been delivered, so it is never repeated.
    #[error("an attempt is in flight or was interrupted")]
    InFlight,
    /// Sent, skipped or given up already.
    #[error("the push is finished ({0:?})")]
    Finished(PushStatus),
    /// Not the attempt that is due (another sender took it).
    #[error("attempt {got} is not due (next is {next})")]
    NotDue { got: u32, next: u32 },
    /// An outcome without an attempt in flight.
    #[error("no attempt in flight")]
    NotInFlight,
}

impl Aggregate for Push {
    const TYPE: &'static str = "push";
    type Command = PushCommand;
    type Event = PushEvent;
    type Error = PushError;
    type Services = ();

    async fn handle(&mut self, command: PushCommand, _: &(), sink: &EventSink<Self>) -> Result<(), PushError> {
        use PushStatus as S;
        if self.status == S::New && !matches!(command, PushCommand::Queue(_)) {
            return Err(PushError::NotFound);
        }
        let event = match command {
            PushCommand::Queue(message) => {
                if self.status != S::New {
                    return Ok(());
                }
                PushEvent::PushQueued(message)
            }
            PushCommand::Attempt { attempt } => match self.status {
                S::Queued | S::Failed if attempt == self.attempts + 1 => PushEvent::PushAttempted { attempt },
                S::Queued | S::Failed => {
                    return Err(PushError::NotDue {
                        got: attempt,
                        next: self.attempts + 1,
                    })
                }
                S::InFlight => return Err(PushError::InFlight),
                finished => return Err(PushError::Finished(finished)),
            },
            PushCommand::RecordSent => match self.status {
                S::InFlight => PushEvent::PushSent { attempt: self.attempts },
                _ => return Err(PushError::NotInFlight),
            },
            PushCommand::RecordFailed { error, retry_at } => match self.status {
                S::InFlight => PushEvent::PushFailed {
                    attempt: self.attempts,
                    error,
                    retry_at,
                },
                _ => return Err(PushError::NotInFlight),
            },
            PushCommand::RecordSkipped { reason } => match self.status {
                S::Queued | S::InFlight | S::Failed => PushEvent::PushSkipped {
                    attempt: self.attempts,
                    reason,
                },
                finished => return Err(PushError::Finished(finished)),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: PushEvent) {
        match event {
            PushEvent::PushQueued(message) => {
                self.message = Some(message);
                self.status = PushStatus::Queued;
            }
            PushEvent::PushAttempted { attempt } => {
                self.attempts = attempt;
                self.status = PushStatus::InFlight;
            }
            PushEvent::PushSent { .. } => self.status = PushStatus::Sent,
            PushEvent::PushFailed { retry_at, .. } => {
                self.status = if retry_at.is_some() {
                    PushStatus::Failed
                } else {
                    PushStatus::GivenUp
                }
            }
            PushEvent::PushSkipped { .. } => self.status = PushStatus::Skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Push>;

    fn message() -> PushMessage {
        PushMessage {
            user_id: UserId::default(),
            kind: "order_request".into(),
            template_id: "T1".into(),
            data: BTreeMap::from([("thing1".into(), "新的医嘱申请".into())]),
        }
    }

    fn later() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:30Z").unwrap().into()
    }

    fn failed(attempt: u32, retry: bool) -> PushEvent {
        PushEvent::PushFailed {
            attempt,
            error: "HTTP 500".into(),
            retry_at: retry.then(later),
        }
    }

    #[test]
    fn it_should_queue_a_message_once() {
        T::with(())
            .given_no_previous_events()
            .when(PushCommand::Queue(message()))
            .then_expect_events(vec![PushEvent::PushQueued(message())]);
        T::with(())
            .given(vec![PushEvent::PushQueued(message())])
            .when(PushCommand::Queue(message()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_attempt_a_message_never_queued() {
        T::with(())
            .given_no_previous_events()
            .when(PushCommand::Attempt { attempt: 1 })
            .then_expect_error(PushError::NotFound);
    }

    #[test]
    fn it_should_attempt_a_queued_message_first_as_attempt_one() {
        T::with(())
            .given(vec![PushEvent::PushQueued(message())])
            .when(PushCommand::Attempt { attempt: 1 })
            .then_expect_events(vec![PushEvent::PushAttempted { attempt: 1 }]);
        T::with(())
            .given(vec![PushEvent::PushQueued(message())])
            .when(PushCommand::Attempt { attempt: 2 })
            .then_expect_error(PushError::NotDue { got: 2, next: 1 });
    }

    #[test]
    fn it_should_never_attempt_again_after_an_attempt_without_outcome() {
        T::with(())
            .given(vec![
                PushEvent::PushQueued(message()),
                PushEvent::PushAttempted { attempt: 1 },
            ])
            .when(PushCommand::Attempt { attempt: 2 })
            .then_expect_error(PushError::InFlight);
    }

    #[test]
    fn it_should_record_the_outcome_of_the_attempt_in_flight() {
        let in_flight = vec![
            PushEvent::PushQueued(message()),
            PushEvent::PushAttempted { attempt: 1 },
        ];
        T::with(())
            .given(in_flight.clone())
            .when(PushCommand::RecordSent)
            .then_expect_events(vec![PushEvent::PushSent { attempt: 1 }]);
        T::with(())
            .given(in_flight.clone())
            .when(PushCommand::RecordFailed {
                error: "HTTP 500".into(),
                retry_at: Some(later()),
            })
            .then_expect_events(vec![failed(1, true)]);
        T::with(())
            .given(in_flight)
            .when(PushCommand::RecordSkipped { reason: "43101".into() })
            .then_expect_events(vec![PushEvent::PushSkipped {
                attempt: 1,
                reason: "43101".into(),
            }]);
    }

    #[test]
    fn it_should_not_record_an_outcome_without_an_attempt_in_flight() {
        T::with(())
            .given(vec![PushEvent::PushQueued(message())])
            .when(PushCommand::RecordSent)
            .then_expect_error(PushError::NotInFlight);
    }

    #[test]
    fn it_should_retry_a_recorded_failure_with_the_next_attempt_only() {
        let failed_once = vec![
            PushEvent::PushQueued(message()),
            PushEvent::PushAttempted { attempt: 1 },
            failed(1, true),
        ];
        T::with(())
            .given(failed_once.clone())
            .when(PushCommand::Attempt { attempt: 2 })
            .then_expect_events(vec![PushEvent::PushAttempted { attempt: 2 }]);
        T::with(())
            .given(failed_once)
            .when(PushCommand::Attempt { attempt: 1 })
            .then_expect_error(PushError::NotDue { got: 1, next: 2 });
    }

    #[test]
    fn it_should_not_attempt_a_message_sent_skipped_or_given_up() {
        let start = || {
            vec![
                PushEvent::PushQueued(message()),
                PushEvent::PushAttempted { attempt: 1 },
            ]
        };
        for (end, status) in [
            (PushEvent::PushSent { attempt: 1 }, PushStatus::Sent),
            (failed(1, false), PushStatus::GivenUp),
            (
                PushEvent::PushSkipped {
                    attempt: 1,
                    reason: "r".into(),
                },
                PushStatus::Skipped,
            ),
        ] {
            let mut given = start();
            given.push(end);
            T::with(())
                .given(given)
                .when(PushCommand::Attempt { attempt: 2 })
                .then_expect_error(PushError::Finished(status));
        }
    }

    #[test]
    fn it_should_skip_a_queued_message_whose_recipient_has_no_wechat() {
        T::with(())
            .given(vec![PushEvent::PushQueued(message())])
            .when(PushCommand::RecordSkipped {
                reason: "not_bound".into(),
            })
            .then_expect_events(vec![PushEvent::PushSkipped {
                attempt: 0,
                reason: "not_bound".into(),
            }]);
    }
}
