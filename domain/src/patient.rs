//! A person cared for. Registered into one family; the sensitive fields
//! (`id_card`, `phone`) are value types whose `Debug` never prints them.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DomainError;
use crate::ids::{FamilyId, UserId};
use crate::values::{Gender, PhoneNumber, ResidentId};

crate::patchable! {
    /// Everything known about a patient.
    PatientDetails,
    /// A partial update of a patient; `None` leaves a field unchanged.
    PatientChanges {
        required {
            name: String,
            gender: Gender,
            birth_date: NaiveDate,
            relationship_to_head: String,
            medical_history: Vec<String>,
            current_medications: Vec<String>,
        }
        optional {
            id_card: ResidentId,
            phone: PhoneNumber,
            allergies: String,
            service_preferences: Value,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatientCommand {
    Register {
        family_id: FamilyId,
        details: PatientDetails,
    },
    Update(PatientChanges),
    /// Erase the patient's personal data (the key is destroyed by the caller
    /// once this event is stored). The reason must not hold personal data.
    Erase {
        reason: String,
        erased_by: UserId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PatientEvent {
    PatientRegistered {
        family_id: FamilyId,
        details: PatientDetails,
    },
    PatientUpdated(PatientChanges),
    PatientErased {
        reason: String,
        erased_by: UserId,
    },
}

impl DomainEvent for PatientEvent {
    fn event_type(&self) -> String {
        match self {
            PatientEvent::PatientRegistered { .. } => "PatientRegistered",
            PatientEvent::PatientUpdated(_) => "PatientUpdated",
            PatientEvent::PatientErased { .. } => "PatientErased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Patient {
    pub family_id: Option<FamilyId>,
    pub details: Option<PatientDetails>,
    /// Personal data erased: the record stays, nothing more can be changed.
    #[serde(default)]
    pub erased: bool,
}

/// Checks that hold for any patient, new or updated.
fn check(d: &PatientDetails) -> Result<(), DomainError> {
    if let Some(id) = &d.id_card {
        if id.birth_date() != Some(d.birth_date) {
            return Err(DomainError::field("id_card", "身份证号中的出生日期与birth_date不一致"));
        }
    }
    Ok(())
}

impl Aggregate for Patient {
    const TYPE: &'static str = "patient";
    type Command = PatientCommand;
    type Event = PatientEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: PatientCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        if self.erased && self.details.is_some() {
            return match command {
                // Erasing twice (a retry, or two admins at once) changes nothing.
                PatientCommand::Erase { .. } => Ok(()),
                _ => Err(DomainError::conflict("该患者的个人信息已删除")),
            };
        }
        let event = match (command, &self.details) {
            (PatientCommand::Register { .. }, Some(_)) => return Err(DomainError::conflict("患者已存在")),
            (PatientCommand::Erase { .. }, None) => return Err(DomainError::NotFound("patient")),
            (PatientCommand::Erase { reason, erased_by }, Some(_)) => {
                let reason = crate::values::text(&reason, 500).map_err(|e| DomainError::field("reason", e))?;
                PatientEvent::PatientErased { reason, erased_by }
            }
            (PatientCommand::Register { family_id, details }, None) => {
                check(&details)?;
                PatientEvent::PatientRegistered { family_id, details }
            }
            (PatientCommand::Update(_), None) => return Err(DomainError::NotFound("patient")),
            (PatientCommand::Update(c), Some(d)) => {
                let c = c.against(d);
                if c.is_empty() {
                    return Ok(());
                }
                let mut next = d.clone();
                c.apply_to(&mut next);
                check(&next)?;
                PatientEvent::PatientUpdated(c)
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: PatientEvent) {
        match event {
            PatientEvent::PatientRegistered { family_id, details } => {
                self.family_id = Some(family_id);
                self.details = Some(details);
            }
            PatientEvent::PatientUpdated(c) => {
                if let Some(d) = self.details.as_mut() {
                    c.apply_to(d);
                }
            }
            PatientEvent::PatientErased { .. } => self.erased = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn details() -> PatientDetails {
        PatientDetails {
            name: "王大爷".into(),
            gender: Gender::Male,
            birth_date: NaiveDate::from_ymd_opt(1949, 12, 31).unwrap(),
            relationship_to_head: "本人".into(),
            medical_history: vec!["高血压".into()],
            current_medications: vec![],
            id_card: Some(ResidentId::parse("11010519491231002X").unwrap()),
            phone: None,
            allergies: None,
            service_preferences: None,
        }
    }

    #[test]
    fn it_should_register_a_patient_into_a_family() {
        let family_id = FamilyId::new();
        TestFramework::<Patient>::with(())
            .given_no_previous_events()
            .when(PatientCommand::Register {
                family_id,
                details: details(),
            })
            .then_expect_events(vec![PatientEvent::PatientRegistered {
                family_id,
                details: details(),
            }]);
    }

    #[test]
    fn it_should_refuse_an_id_card_whose_birth_date_differs() {
        let mut d = details();
        d.birth_date = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        TestFramework::<Patient>::with(())
            .given_no_previous_events()
            .when(PatientCommand::Register {
                family_id: FamilyId::new(),
                details: d,
            })
            .then_expect_error(DomainError::field("id_card", "身份证号中的出生日期与birth_date不一致"));
    }

    #[test]
    fn it_should_not_update_an_unknown_patient() {
        TestFramework::<Patient>::with(())
            .given_no_previous_events()
            .when(PatientCommand::Update(PatientChanges::default()))
            .then_expect_error(DomainError::NotFound("patient"));
    }

    #[test]
    fn it_should_erase_once_and_then_refuse_changes() {
        let family_id = FamilyId::new();
        let by = UserId::new();
        let registered = PatientEvent::PatientRegistered {
            family_id,
            details: details(),
        };
        TestFramework::<Patient>::with(())
            .given(vec![registered.clone()])
            .when(PatientCommand::Erase {
                reason: "本人申请删除".into(),
                erased_by: by,
            })
            .then_expect_events(vec![PatientEvent::PatientErased {
                reason: "本人申请删除".into(),
                erased_by: by,
            }]);
        TestFramework::<Patient>::with(())
            .given(vec![
                registered,
                PatientEvent::PatientErased {
                    reason: "本人申请删除".into(),
                    erased_by: by,
                },
            ])
            .when(PatientCommand::Update(PatientChanges::default()))
            .then_expect_error(DomainError::conflict("该患者的个人信息已删除"));
    }

    #[test]
    fn it_should_want_a_reason_to_erase() {
        TestFramework::<Patient>::with(())
            .given(vec![PatientEvent::PatientRegistered {
                family_id: FamilyId::new(),
                details: details(),
            }])
            .when(PatientCommand::Erase {
                reason: "  ".into(),
                erased_by: UserId::new(),
            })
            .then_expect_error(DomainError::field("reason", "不能为空"));
    }
}
