//! A patient's current medication: free text, as every entry was before
//! structured medications existed (and as stored events still hold them), or
//! a structured `{name, dosage?, frequency?, route?}`.
//!
//! Both shapes deserialize into one [`Medication`] (serde untagged), so an
//! event written with strings loads unchanged; each entry serializes back in
//! the shape it came in: a string stays a string, which keeps every reader of
//! the read model and of old events working.

use serde::{Deserialize, Serialize};

use crate::validation::Validator;
use crate::values::{optional_text, text};

/// At most this many medications per patient.
pub const MAX_MEDICATIONS: usize = 100;
/// Longest name (and longest free-text entry), in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest dosage, frequency or route, in characters.
pub const MAX_DETAIL_CHARS: usize = 100;

/// One current medication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Medication {
    /// Free text such as "氨氯地平 5mg 每日一次".
    Text(String),
    /// A medication whose parts are known.
    Structured(StructuredMedication),
}

/// `{name, dosage?, frequency?, route?}`; `name` defaults to empty so that a
/// missing name is refused by [`check_medications`] naming the field, rather
/// than failing deserialization of the whole list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuredMedication {
    #[serde(default)]
    pub name: String,
    /// e.g. "5mg".
    #[serde(default)]
    pub dosage: Option<String>,
    /// e.g. "每日一次".
    #[serde(default)]
    pub frequency: Option<String>,
    /// e.g. "口服".
    #[serde(default)]
    pub route: Option<String>,
}

impl From<&str> for Medication {
    fn from(s: &str) -> Self {
        Medication::Text(s.to_string())
    }
}

impl Medication {
    /// The medication's name: the whole text of a free-text entry.
    pub fn name(&self) -> &str {
        match self {
            Medication::Text(t) => t,
            Medication::Structured(m) => &m.name,
        }
    }

    /// Trimmed, with blank optional parts dropped; `None` for a blank
    /// free-text entry, which was always ignored. Bounds are checked by
    /// [`check_medications`], not here.
    pub fn normalized(self) -> Option<Medication> {
        let trim = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        match self {
            Medication::Text(t) => {
                let t = t.trim();
                (!t.is_empty()).then(|| Medication::Text(t.to_string()))
            }
            Medication::Structured(m) => Some(Medication::Structured(StructuredMedication {
                name: m.name.trim().to_string(),
                dosage: trim(m.dosage),
                frequency: trim(m.frequency),
                route: trim(m.route),
            })),
        }
    }
}

/// Records in `v` every entry of `items` that can never be accepted, naming
/// it as `<field>[i]` or `<field>[i].name` (and `.dosage`, `.frequency`,
/// `.route`): a structured entry needs a non-empty name, and every part is
/// bounded in length. What the aggregate checks of any patient.
pub fn check_medications(field: &str, items: &[Medication], v: &mut Validator) {
    if items.len() > MAX_MEDICATIONS {
        v.add(field, format!("不能超过{MAX_MEDICATIONS}项"));
        return;
    }
    for (i, item) in items.iter().enumerate() {
        check_one(&format!("{field}[{i}]"), item, v);
    }
}

/// A request's list, [normalized](Medication::normalized) and checked like
/// [`check_medications`], each error naming the index the client sent (blank
/// free-text entries are dropped after counting). `None` when any entry was refused.
pub fn parse_medications(field: &str, items: Vec<Medication>, v: &mut Validator) -> Option<Vec<Medication>> {
    if items.len() > MAX_MEDICATIONS {
        v.add(field, format!("不能超过{MAX_MEDICATIONS}项"));
        return None;
    }
    let mut valid = true;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if let Some(item) = item.normalized() {
            valid &= check_one(&format!("{field}[{i}]"), &item, v);
            out.push(item);
        }
    }
    valid.then_some(out)
}

/// Checks one entry named `at`; whether it passed.
fn check_one(at: &str, item: &Medication, v: &mut Validator) -> bool {
    match item {
        Medication::Text(t) => v.check(at, text(t, MAX_NAME_CHARS)).is_some(),
        Medication::Structured(m) => {
            let mut ok = v.check(&format!("{at}.name"), text(&m.name, MAX_NAME_CHARS)).is_some();
            for (part, value) in [("dosage", &m.dosage), ("frequency", &m.frequency), ("route", &m.route)] {
                ok &= v
                    .check(
                        &format!("{at}.{part}"),
                        optional_text(value.as_deref(), MAX_DETAIL_CHARS),
                    )
                    .is_some();
            }
            ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn structured(name: &str) -> Medication {
        Medication::Structured(StructuredMedication {
            name: name.into(),
            dosage: Some("5mg".into()),
            frequency: None,
            route: None,
        })
    }

    fn refused(items: &[Medication]) -> Vec<String> {
        let mut v = Validator::new();
        check_medications("current_medications", items, &mut v);
        v.finish().err().map(|e| e.0.into_keys().collect()).unwrap_or_default()
    }

    #[test]
    fn it_should_read_a_string_entry_as_free_text_and_write_it_back_as_a_string() {
        let m: Medication = serde_json::from_value(json!("氨氯地平")).unwrap();
        assert_eq!(m, Medication::Text("氨氯地平".into()));
        assert_eq!(serde_json::to_value(&m).unwrap(), json!("氨氯地平"));
    }

    #[test]
    fn it_should_read_an_object_entry_with_its_optional_parts() {
        let m: Medication = serde_json::from_value(json!({"name": "氨氯地平", "dosage": "5mg"})).unwrap();
        assert_eq!(m, structured("氨氯地平"));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"name": "氨氯地平", "dosage": "5mg", "frequency": null, "route": null})
        );
    }

    #[test]
    fn it_should_refuse_a_structured_medication_without_a_name_naming_its_index() {
        let items = ["氨氯地平".into(), structured("阿司匹林"), structured("  ")];
        assert_eq!(refused(&items), vec!["current_medications[2].name".to_string()]);
        let nameless: Medication = serde_json::from_value(json!({"dosage": "5mg"})).unwrap();
        assert_eq!(refused(&[nameless]), vec!["current_medications[0].name".to_string()]);
    }

    #[test]
    fn it_should_refuse_overlong_parts_naming_each() {
        let long = "药".repeat(MAX_DETAIL_CHARS + 1);
        let m = Medication::Structured(StructuredMedication {
            name: "药".repeat(MAX_NAME_CHARS + 1),
            dosage: None,
            frequency: Some(long.clone()),
            route: Some(long),
        });
        assert_eq!(
            refused(&[m]),
            vec![
                "current_medications[0].frequency".to_string(),
                "current_medications[0].name".to_string(),
                "current_medications[0].route".to_string(),
            ]
        );
    }

    #[test]
    fn it_should_refuse_more_than_the_maximum_number_of_medications() {
        let items = vec![Medication::from("药"); MAX_MEDICATIONS + 1];
        assert_eq!(refused(&items), vec!["current_medications".to_string()]);
    }

    #[test]
    fn it_should_name_the_index_the_client_sent_when_blank_entries_are_dropped() {
        let mut v = Validator::new();
        let parsed = parse_medications(
            "current_medications",
            vec![" ".into(), structured(""), "阿司匹林".into()],
            &mut v,
        );
        assert_eq!(parsed, None);
        let refused: Vec<String> = v.finish().unwrap_err().0.into_keys().collect();
        assert_eq!(refused, vec!["current_medications[1].name".to_string()]);
        let mut v = Validator::new();
        let parsed = parse_medications("current_medications", vec![" ".into(), " 阿司匹林 ".into()], &mut v);
        assert_eq!(parsed, Some(vec![Medication::from("阿司匹林")]));
    }

    #[test]
    fn it_should_drop_blank_free_text_and_blank_optional_parts_when_normalizing() {
        assert_eq!(Medication::from("  ").normalized(), None);
        let m = Medication::Structured(StructuredMedication {
            name: " 氨氯地平 ".into(),
            dosage: Some(" 5mg ".into()),
            frequency: Some(" ".into()),
            route: None,
        });
        assert_eq!(m.normalized(), Some(structured("氨氯地平")));
    }
}
