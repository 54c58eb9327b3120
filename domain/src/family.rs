//! A household under care: where recorders go, and whom they call.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::values::PhoneNumber;

crate::patchable! {
    /// All the family's own fields; used both for creation and as the full state.
    FamilyDetails,
    /// A partial update: `None` leaves a field as it is.
    FamilyChanges {
        required { family_name: String, primary_address: String, contact_phone: PhoneNumber }
        optional {
            secondary_address: String,
            emergency_contact: String,
            emergency_phone: PhoneNumber,
            // Home coordinates, used to check where a visit was recorded.
            home_lat: f64,
            home_lng: f64,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FamilyCommand {
    Create(FamilyDetails),
    Update(FamilyChanges),
    /// Erase the household's personal data (done when its last patient is erased).
    Erase {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FamilyEvent {
    FamilyCreated(FamilyDetails),
    FamilyUpdated(FamilyChanges),
    FamilyErased { reason: String },
}

impl DomainEvent for FamilyEvent {
    fn event_type(&self) -> String {
        match self {
            FamilyEvent::FamilyCreated(_) => "FamilyCreated",
            FamilyEvent::FamilyUpdated(_) => "FamilyUpdated",
            FamilyEvent::FamilyErased { .. } => "FamilyErased",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Family {
    pub details: Option<FamilyDetails>,
    #[serde(default)]
    pub erased: bool,
}

/// Every way a family refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FamilyError {
    /// No family was created under this id (404).
    #[error("no such family")]
    NotFound,
    /// A second creation under the same id (409).
    #[error("the family already exists")]
    AlreadyExists,
    /// The household's personal data was erased; nothing more changes (409).
    #[error("the family's personal data was erased")]
    Erased,
}

impl Aggregate for Family {
    const TYPE: &'static str = "family";
    type Command = FamilyCommand;
    type Event = FamilyEvent;
    type Error = FamilyError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), FamilyError> {
        if self.erased {
            return match command {
                FamilyCommand::Erase { .. } => Ok(()),
                _ => Err(FamilyError::Erased),
            };
        }
        let event = match (command, &self.details) {
            (FamilyCommand::Create(_), Some(_)) => return Err(FamilyError::AlreadyExists),
            (FamilyCommand::Erase { .. }, None) => return Err(FamilyError::NotFound),
            (FamilyCommand::Erase { reason }, Some(_)) => FamilyEvent::FamilyErased { reason },
            (FamilyCommand::Create(d), None) => FamilyEvent::FamilyCreated(d),
            (FamilyCommand::Update(_), None) => return Err(FamilyError::NotFound),
            (FamilyCommand::Update(c), Some(d)) => {
                let c = c.against(d);
                if c.is_empty() {
                    return Ok(());
                }
                FamilyEvent::FamilyUpdated(c)
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: FamilyEvent) {
        match event {
            FamilyEvent::FamilyCreated(d) => self.details = Some(d),
            FamilyEvent::FamilyUpdated(c) => {
                if let Some(d) = self.details.as_mut() {
                    c.apply_to(d)
                }
            }
            FamilyEvent::FamilyErased { .. } => self.erased = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Family>;

    fn details() -> FamilyDetails {
        FamilyDetails {
            family_name: "王家".into(),
            primary_address: "上海市徐汇区1号".into(),
            secondary_address: None,
            contact_phone: PhoneNumber::parse("13800138000").unwrap(),
            emergency_contact: None,
            emergency_phone: None,
            home_lat: None,
            home_lng: None,
        }
    }
    fn created() -> FamilyEvent {
        FamilyEvent::FamilyCreated(details())
    }
    fn erase() -> FamilyCommand {
        FamilyCommand::Erase {
            reason: "最后一位患者已删除".into(),
        }
    }
    fn erased() -> FamilyEvent {
        FamilyEvent::FamilyErased {
            reason: "最后一位患者已删除".into(),
        }
    }

    #[test]
    fn it_should_create_a_family() {
        T::with(())
            .given_no_previous_events()
            .when(FamilyCommand::Create(details()))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn it_should_not_create_a_family_twice() {
        T::with(())
            .given(vec![created()])
            .when(FamilyCommand::Create(details()))
            .then_expect_error(FamilyError::AlreadyExists);
    }

    #[test]
    fn it_should_write_only_the_fields_that_change() {
        let changes = FamilyChanges {
            family_name: Some("王家".into()),
            primary_address: Some("北京".into()),
            ..Default::default()
        };
        T::with(())
            .given(vec![created()])
            .when(FamilyCommand::Update(changes))
            .then_expect_events(vec![FamilyEvent::FamilyUpdated(FamilyChanges {
                primary_address: Some("北京".into()),
                ..Default::default()
            })]);
    }

    #[test]
    fn it_should_not_update_or_erase_a_family_that_does_not_exist() {
        for command in [FamilyCommand::Update(FamilyChanges::default()), erase()] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(FamilyError::NotFound);
        }
    }

    #[test]
    fn it_should_write_nothing_for_an_update_that_changes_nothing() {
        T::with(())
            .given(vec![created()])
            .when(FamilyCommand::Update(FamilyChanges {
                family_name: Some("王家".into()),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_erase_a_family() {
        T::with(())
            .given(vec![created()])
            .when(erase())
            .then_expect_events(vec![erased()]);
    }

    #[test]
    fn it_should_record_nothing_when_erasing_an_erased_family_again() {
        T::with(())
            .given(vec![created(), erased()])
            .when(erase())
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_refuse_to_change_an_erased_family() {
        T::with(())
            .given(vec![created(), erased()])
            .when(FamilyCommand::Update(FamilyChanges {
                primary_address: Some("北京".into()),
                ..Default::default()
            }))
            .then_expect_error(FamilyError::Erased);
    }
}
