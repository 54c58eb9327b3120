//! A person cared for. Registered into one family; the sensitive fields
//! (`id_card`, `phone`) are value types whose `Debug` never prints them.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{FamilyId, UserId};
use crate::medication::{check_medications, Medication};
use crate::validation::{Invalid, Validator};
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
            current_medications: Vec<Medication>,
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

/// Every way a patient refuses a command. The server's error module gives
/// each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatientError {
    /// An ID card whose birth date differs, or an erasure without a reason
    /// (400, naming the field).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No patient was registered under this id (404).
    #[error("no such patient")]
    NotFound,
    /// A second registration under the same id (409).
    #[error("the patient already exists")]
    AlreadyExists,
    /// The patient's personal data was erased; nothing more changes (409).
    /// Also what the store answers for any command about an erased patient.
    #[error("the patient's personal data was erased")]
    Erased,
}

/// Checks that hold for any patient, new or updated.
fn check(d: &PatientDetails) -> Result<(), Invalid> {
    let mut v = Validator::new();
    if let Some(id) = &d.id_card {
        if id.birth_date() != Some(d.birth_date) {
            v.add("id_card", "身份证号中的出生日期与birth_date不一致");
        }
    }
    check_medications("current_medications", &d.current_medications, &mut v);
    v.finish()
}

impl Aggregate for Patient {
    const TYPE: &'static str = "patient";
    type Command = PatientCommand;
    type Event = PatientEvent;
    type Error = PatientError;
    type Services = ();

    async fn handle(&mut self, command: PatientCommand, _: &(), sink: &EventSink<Self>) -> Result<(), PatientError> {
        if self.erased && self.details.is_some() {
            return match command {
                // Erasing twice (a retry, or two admins at once) changes nothing.
                PatientCommand::Erase { .. } => Ok(()),
                _ => Err(PatientError::Erased),
            };
        }
        let event = match (command, &self.details) {
            (PatientCommand::Register { .. }, Some(_)) => return Err(PatientError::AlreadyExists),
            (PatientCommand::Erase { .. }, None) => return Err(PatientError::NotFound),
            (PatientCommand::Erase { reason, erased_by }, Some(_)) => {
                let reason = crate::values::text(&reason, 500).map_err(|e| Invalid::field("reason", e))?;
                PatientEvent::PatientErased { reason, erased_by }
            }
            (PatientCommand::Register { family_id, details }, None) => {
                check(&details)?;
                PatientEvent::PatientRegistered { family_id, details }
            }
            (PatientCommand::Update(_), None) => return Err(PatientError::NotFound),
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
    use crate::medication::StructuredMedication;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Patient>;

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
    fn registered() -> PatientEvent {
        PatientEvent::PatientRegistered {
            family_id: FamilyId::default(),
            details: details(),
        }
    }
    fn register() -> PatientCommand {
        PatientCommand::Register {
            family_id: FamilyId::default(),
            details: details(),
        }
    }
    fn erase(reason: &str) -> PatientCommand {
        PatientCommand::Erase {
            reason: reason.into(),
            erased_by: UserId::default(),
        }
    }
    fn erased() -> PatientEvent {
        PatientEvent::PatientErased {
            reason: "本人申请删除".into(),
            erased_by: UserId::default(),
        }
    }
    fn names(r: Result<Vec<PatientEvent>, PatientError>, field: &str) -> bool {
        matches!(r, Err(PatientError::Validation(i)) if i.names(field))
    }

    #[test]
    fn it_should_register_a_patient_into_a_family() {
        T::with(())
            .given_no_previous_events()
            .when(register())
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn it_should_refuse_an_id_card_whose_birth_date_differs() {
        let mut d = details();
        d.birth_date = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        let r = T::with(())
            .given_no_previous_events()
            .when(PatientCommand::Register {
                family_id: FamilyId::new(),
                details: d,
            })
            .inspect_result();
        assert!(names(r, "id_card"));
    }

    #[test]
    fn it_should_not_register_a_patient_twice() {
        T::with(())
            .given(vec![registered()])
            .when(register())
            .then_expect_error(PatientError::AlreadyExists);
    }

    #[test]
    fn it_should_not_update_or_erase_an_unknown_patient() {
        for command in [PatientCommand::Update(PatientChanges::default()), erase("本人申请删除")] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(PatientError::NotFound);
        }
    }

    #[test]
    fn it_should_write_only_the_fields_an_update_changes() {
        T::with(())
            .given(vec![registered()])
            .when(PatientCommand::Update(PatientChanges {
                name: Some("王大爷".into()),
                allergies: Some("青霉素".into()),
                ..Default::default()
            }))
            .then_expect_events(vec![PatientEvent::PatientUpdated(PatientChanges {
                allergies: Some("青霉素".into()),
                ..Default::default()
            })]);
    }

    #[test]
    fn it_should_write_nothing_for_an_update_that_changes_nothing() {
        T::with(())
            .given(vec![registered()])
            .when(PatientCommand::Update(PatientChanges {
                name: Some("王大爷".into()),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_refuse_an_update_that_makes_the_id_card_disagree_with_the_birth_date() {
        let r = T::with(())
            .given(vec![registered()])
            .when(PatientCommand::Update(PatientChanges {
                birth_date: NaiveDate::from_ymd_opt(1950, 1, 1),
                ..Default::default()
            }))
            .inspect_result();
        assert!(names(r, "id_card"));
    }

    #[test]
    fn it_should_register_a_patient_with_free_text_and_structured_medications() {
        let mut d = details();
        d.current_medications = vec![
            "氨氯地平 5mg".into(),
            Medication::Structured(StructuredMedication {
                name: "二甲双胍".into(),
                dosage: Some("0.5g".into()),
                frequency: Some("每日两次".into()),
                route: Some("口服".into()),
            }),
        ];
        let family_id = FamilyId::default();
        T::with(())
            .given_no_previous_events()
            .when(PatientCommand::Register {
                family_id,
                details: d.clone(),
            })
            .then_expect_events(vec![PatientEvent::PatientRegistered { family_id, details: d }]);
    }

    #[test]
    fn it_should_refuse_a_structured_medication_without_a_name() {
        let r = T::with(())
            .given(vec![registered()])
            .when(PatientCommand::Update(PatientChanges {
                current_medications: Some(vec![
                    "氨氯地平".into(),
                    Medication::Structured(StructuredMedication {
                        name: String::new(),
                        dosage: Some("5mg".into()),
                        frequency: None,
                        route: None,
                    }),
                ]),
                ..Default::default()
            }))
            .inspect_result();
        assert!(names(r, "current_medications[1].name"));
    }

    #[test]
    fn it_should_load_a_patient_registered_with_string_medications_before_they_were_structured() {
        // As stored by every version before structured medications.
        let stored = serde_json::json!({"PatientRegistered": {
            "family_id": FamilyId::default(),
            "details": {"name": "王大爷", "gender": "male", "birth_date": "1949-12-31",
                "relationship_to_head": "本人", "medical_history": ["高血压"],
                "current_medications": ["氨氯地平 5mg 每日一次"], "id_card": null, "phone": null}}});
        let event: PatientEvent = serde_json::from_value(stored).unwrap();
        let mut patient = Patient::default();
        patient.apply(event);
        let meds = &patient.details.as_ref().unwrap().current_medications;
        assert_eq!(meds, &vec![Medication::Text("氨氯地平 5mg 每日一次".into())]);
        assert_eq!(
            serde_json::to_value(meds).unwrap(),
            serde_json::json!(["氨氯地平 5mg 每日一次"])
        );
    }

    #[test]
    fn it_should_erase_a_patient() {
        T::with(())
            .given(vec![registered()])
            .when(erase("本人申请删除"))
            .then_expect_events(vec![erased()]);
    }

    #[test]
    fn it_should_record_nothing_when_erasing_an_erased_patient_again() {
        T::with(())
            .given(vec![registered(), erased()])
            .when(erase("重复请求"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_refuse_to_change_an_erased_patient() {
        T::with(())
            .given(vec![registered(), erased()])
            .when(PatientCommand::Update(PatientChanges::default()))
            .then_expect_error(PatientError::Erased);
    }

    #[test]
    fn it_should_want_a_reason_to_erase() {
        let r = T::with(()).given(vec![registered()]).when(erase("  ")).inspect_result();
        assert!(names(r, "reason"));
    }
}
