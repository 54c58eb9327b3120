//! A household under care: where recorders go, and whom they call.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
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

impl Aggregate for Family {
    const TYPE: &'static str = "family";
    type Command = FamilyCommand;
    type Event = FamilyEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        if self.erased {
            return match command {
                FamilyCommand::Erase { .. } => Ok(()),
                _ => Err(DomainError::conflict("该家庭的个人信息已删除")),
            };
        }
        let event = match (command, &self.details) {
            (FamilyCommand::Create(_), Some(_)) => return Err(DomainError::conflict("家庭已存在")),
            (FamilyCommand::Erase { .. }, None) => return Err(DomainError::NotFound("family")),
            (FamilyCommand::Erase { reason }, Some(_)) => FamilyEvent::FamilyErased { reason },
            (FamilyCommand::Create(d), None) => FamilyEvent::FamilyCreated(d),
            (FamilyCommand::Update(_), None) => return Err(DomainError::NotFound("family")),
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

    #[test]
    fn it_should_write_only_the_fields_that_change() {
        let changes = FamilyChanges {
            family_name: Some("王家".into()),
            primary_address: Some("北京".into()),
            ..Default::default()
        };
        TestFramework::<Family>::with(())
            .given(vec![FamilyEvent::FamilyCreated(details())])
            .when(FamilyCommand::Update(changes))
            .then_expect_events(vec![FamilyEvent::FamilyUpdated(FamilyChanges {
                primary_address: Some("北京".into()),
                ..Default::default()
            })]);
    }

    #[test]
    fn it_should_not_update_a_family_that_does_not_exist() {
        TestFramework::<Family>::with(())
            .given_no_previous_events()
            .when(FamilyCommand::Update(FamilyChanges::default()))
            .then_expect_error(DomainError::NotFound("family"));
    }

    #[test]
    fn it_should_write_nothing_for_an_update_that_changes_nothing() {
        TestFramework::<Family>::with(())
            .given(vec![FamilyEvent::FamilyCreated(details())])
            .when(FamilyCommand::Update(FamilyChanges {
                family_name: Some("王家".into()),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
    }
}
