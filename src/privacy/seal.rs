//! Sealing and opening the personal fields of an event's JSON (pure: the keys
//! come from the key store). A sealed field is
//! `{"$pii": <subject>, "t": <json type>, "d": <base64 nonce ‖ AES-256-GCM ciphertext>}`,
//! bound to its subject, field name and JSON type; once the subject's key is
//! gone it reads as its erased form.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::{PrivacyError, ERASED, MARK};

pub(super) fn has_protected(v: &Value, fields: &[&str]) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| (fields.contains(&k.as_str()) && !v.is_null()) || has_protected(v, fields)),
        Value::Array(a) => a.iter().any(|v| has_protected(v, fields)),
        _ => false,
    }
}

/// The first string value of `field` at any depth.
pub(crate) fn find_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    match v {
        Value::Object(m) => m
            .get(field)
            .and_then(Value::as_str)
            .or_else(|| m.values().find_map(|v| find_str(v, field))),
        Value::Array(a) => a.iter().find_map(|v| find_str(v, field)),
        _ => None,
    }
}

pub(super) fn type_tag(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "s",
        Value::Array(_) => "a",
        Value::Object(_) => "o",
        Value::Number(_) => "n",
        Value::Bool(_) => "b",
        Value::Null => "z",
    }
}

/// What a field's ciphertext is bound to: its subject, its field name and its
/// JSON type, so it cannot be moved to another subject or another field.
pub(super) fn field_aad(subject: &str, field: &str, tag: &str) -> Vec<u8> {
    format!("{subject}\0{field}\0{tag}").into_bytes()
}

pub(super) fn seal_fields(v: &mut Value, fields: &[&str], subject: &str, key: &Aes256Gcm) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if fields.contains(&k.as_str()) && !val.is_null() {
                    *val = seal_value(val, k, subject, key);
                } else {
                    seal_fields(val, fields, subject, key);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| seal_fields(v, fields, subject, key)),
        _ => {}
    }
}

pub(super) fn seal_value(v: &Value, field: &str, subject: &str, key: &Aes256Gcm) -> Value {
    let nonce: [u8; 12] = rand::random();
    let tag = type_tag(v);
    let plain = serde_json::to_vec(v).expect("a JSON value serialises");
    let ct = key
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &field_aad(subject, field, tag),
            },
        )
        .expect("AES-GCM encryption does not fail for field-sized inputs");
    json!({ MARK: subject, "t": tag, "d": B64.encode([nonce.as_slice(), &ct].concat()) })
}

pub(super) fn sealed_subject(v: &Value) -> Option<&str> {
    v.as_object()
        .filter(|m| m.len() == 3)
        .and_then(|m| m.get(MARK))
        .and_then(Value::as_str)
}

pub(super) fn collect_sealed(v: &Value, out: &mut Vec<String>) {
    if let Some(s) = sealed_subject(v) {
        out.push(s.to_string());
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|v| collect_sealed(v, out)),
        Value::Array(a) => a.iter().for_each(|v| collect_sealed(v, out)),
        _ => {}
    }
}

pub(super) fn open_fields(v: &mut Value, keys: &HashMap<String, Option<Aes256Gcm>>) -> Result<(), PrivacyError> {
    match v {
        Value::Object(m) => m.iter_mut().try_for_each(|(field, val)| {
            // Read from the sealed form by reference (no copy of its subject,
            // tag, text or key), then put what it opens to in its place.
            let opened = match sealed_subject(val) {
                None => None,
                Some(subject) => {
                    let tag = val.get("t").and_then(Value::as_str).unwrap_or("s");
                    let data = val.get("d").and_then(Value::as_str).unwrap_or_default();
                    Some(match keys.get(subject).and_then(Option::as_ref) {
                        None => erased_form(tag),
                        Some(key) => open_value(subject, &field_aad(subject, field, tag), data, key)?,
                    })
                }
            };
            match opened {
                Some(v) => *val = v,
                None => open_fields(val, keys)?,
            }
            Ok(())
        }),
        Value::Array(a) => a.iter_mut().try_for_each(|v| open_fields(v, keys)),
        _ => Ok(()),
    }
}

pub(super) fn open_value(subject: &str, aad: &[u8], data: &str, key: &Aes256Gcm) -> Result<Value, PrivacyError> {
    let corrupt = || PrivacyError::Corrupt(subject.to_string());
    let raw = B64.decode(data).map_err(|_| corrupt())?;
    if raw.len() < 12 {
        return Err(corrupt());
    }
    let plain = key
        .decrypt(Nonce::from_slice(&raw[..12]), Payload { msg: &raw[12..], aad })
        .map_err(|_| corrupt())?;
    serde_json::from_slice(&plain).map_err(|_| corrupt())
}

/// What a field of an erased subject reads as: keeps the JSON shape the
/// event types expect (strings stay strings, lists stay lists).
pub(super) fn erased_form(tag: &str) -> Value {
    match tag {
        "s" => Value::String(ERASED.into()),
        "a" => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::KeyInit;

    use super::*;

    fn key() -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn protected_fields_are_sealed_at_any_depth_and_open_back() {
        let original = json!({"PatientRegistered": {"family_id": "f", "details": {
            "name": "王大爷", "phone": "13800138000", "medical_history": ["高血压"], "allergies": null,
            "gender": "male"}}});
        let mut v = original.clone();
        let fields = &["name", "phone", "medical_history", "allergies"];
        seal_fields(&mut v, fields, "p1", &key());
        let text = v.to_string();
        assert!(!text.contains("王大爷") && !text.contains("13800138000") && !text.contains("高血压"));
        assert!(text.contains("male"), "other fields stay in clear: {text}");
        assert_eq!(v["PatientRegistered"]["details"]["allergies"], Value::Null);
        let mut keys = HashMap::new();
        keys.insert("p1".to_string(), Some(key()));
        open_fields(&mut v, &keys).unwrap();
        assert_eq!(v, original);
    }

    #[test]
    fn erased_fields_keep_their_json_shape() {
        let mut v = json!({"E": {"name": "王大爷", "medical_history": ["x"], "location": {"lat": 1.0}}});
        seal_fields(&mut v, &["name", "medical_history", "location"], "p1", &key());
        let mut keys = HashMap::new();
        keys.insert("p1".to_string(), None);
        open_fields(&mut v, &keys).unwrap();
        assert_eq!(
            v,
            json!({"E": {"name": ERASED, "medical_history": [], "location": null}})
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_subject_does_not_open() {
        let mut v = json!({"name": "王大爷"});
        seal_fields(&mut v, &["name"], "p1", &key());
        let moved = v.to_string().replace("\"p1\"", "\"p2\"");
        let mut v: Value = serde_json::from_str(&moved).unwrap();
        let mut keys = HashMap::new();
        keys.insert("p2".to_string(), Some(key()));
        assert!(matches!(open_fields(&mut v, &keys), Err(PrivacyError::Corrupt(_))));
    }

    #[test]
    fn a_ciphertext_moved_to_another_field_does_not_open() {
        let mut v = json!({"name": "王大爷", "allergies": "青霉素"});
        seal_fields(&mut v, &["name", "allergies"], "p1", &key());
        let name = v["name"].clone();
        v["allergies"] = name;
        let mut keys = HashMap::new();
        keys.insert("p1".to_string(), Some(key()));
        assert!(matches!(open_fields(&mut v, &keys), Err(PrivacyError::Corrupt(_))));
    }

    #[test]
    fn the_patient_is_found_at_any_depth() {
        let v = json!({"VisitScheduled": {"patient_id": "abc", "notes": "x"}});
        assert_eq!(find_str(&v, "patient_id"), Some("abc"));
        assert_eq!(find_str(&json!("VisitConfirmed"), "patient_id"), None);
    }
}
