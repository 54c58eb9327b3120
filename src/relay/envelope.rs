//! The message format on Kafka: a CloudEvents 1.0 structured-mode JSON
//! envelope per event, with personal identifiers hashed or left out.
//!
//! Topics: one per aggregate type, `<prefix><aggregate_type>` (default prefix
//! `carelog.`), keyed by aggregate id, so one aggregate's events share a
//! partition and keep their order, and a consumer subscribes only to the
//! streams it needs. See `docs/events.md` for every event type.

use hmac::Mac;
use projections::StoredEvent;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Namespace of event ids: `uuid_v5(NS, "<aggregate_type>:<aggregate_id>:<sequence>")`.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_0003);

/// Fields that identify a person: published only as a keyed hash
/// (`hmac-sha256:<hex>`), so analytics can still count distinct values.
pub const HASHED_FIELDS: &[&str] = &["id_card", "phone", "contact_phone", "emergency_phone"];

/// Fields never published: secrets, names, addresses, whereabouts and free
/// text about health. Whatever reaches Kafka cannot be recalled, so what a
/// patient may ask to erase is kept out from the start.
pub const OMITTED_FIELDS: &[&str] = &[
    "password_hash",
    "openid",
    "name",
    "family_name",
    "primary_address",
    "secondary_address",
    "address",
    "emergency_contact",
    "location",
    "home_lat",
    "home_lng",
    "symptoms",
    "notes",
    "note",
    "allergies",
    "medical_history",
    "current_medications",
    "service_preferences",
    "reason",
    "result_notes",
    "original_name",
    "avatar",
    "content",
    "description",
    "resolution",
];

/// Event id, stable across re-publishing so consumers can deduplicate.
pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{aggregate_type}:{aggregate_id}:{sequence}").as_bytes(),
    )
    .to_string()
}

pub fn topic(prefix: &str, aggregate_type: &str) -> String {
    format!("{prefix}{aggregate_type}")
}

fn keyed_hash(key: &[u8], value: &str) -> String {
    let mut mac = crate::privacy::hmac_sha256(key);
    mac.update(value.as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

/// Replaces identifiers by keyed hashes and removes omitted fields, at any depth.
pub fn sanitize(value: &mut Value, key: &[u8]) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !OMITTED_FIELDS.contains(&k.as_str()));
            for (k, v) in map.iter_mut() {
                if HASHED_FIELDS.contains(&k.as_str()) {
                    if let Value::String(s) = v {
                        *v = Value::String(keyed_hash(key, s));
                    }
                } else {
                    sanitize(v, key);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| sanitize(v, key)),
        _ => {}
    }
}

/// The envelope of one stored event.
pub fn envelope(e: &StoredEvent, pii_key: &[u8]) -> Value {
    let mut data = e.payload.clone();
    sanitize(&mut data, pii_key);
    // The payload is `{"<EventType>": {...}}`; publish the inner object.
    // Unit variants (e.g. `VisitConfirmed`) are stored as a bare string: they carry no data.
    let data = match data {
        Value::Object(mut m) if m.len() == 1 && m.contains_key(&e.event_type) => {
            m.remove(&e.event_type).unwrap_or(Value::Null)
        }
        Value::String(s) if s == e.event_type => Value::Object(Map::new()),
        other => other,
    };
    let meta = |k: &str| {
        e.metadata
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    let mut m = Map::new();
    m.insert("specversion".into(), json!("1.0"));
    m.insert(
        "id".into(),
        json!(event_id(&e.aggregate_type, &e.aggregate_id, e.sequence)),
    );
    m.insert("source".into(), json!(format!("carelog/{}", e.aggregate_type)));
    m.insert(
        "type".into(),
        json!(format!("carelog.{}.{}", e.aggregate_type, e.event_type)),
    );
    m.insert("subject".into(), json!(e.aggregate_id));
    m.insert("time".into(), json!(projections::store::instant(e.recorded_at)));
    m.insert("datacontenttype".into(), json!("application/json"));
    m.insert("dataschemaversion".into(), json!(e.event_version));
    m.insert("aggregatetype".into(), json!(e.aggregate_type));
    m.insert("sequence".into(), json!(e.sequence));
    m.insert("position".into(), json!(e.position));
    m.insert("actorid".into(), meta("actor_id"));
    m.insert("actorrole".into(), meta("actor_role"));
    m.insert("correlationid".into(), meta("correlation_id"));
    m.insert("command".into(), meta("command"));
    m.insert("data".into(), data);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_hashed_and_personal_text_is_left_out() {
        let mut v = json!({"PatientRegistered": {"details": {"name": "王奶奶", "id_card": "11010519491231002X",
            "phone": "13800138000", "gender": "female", "medical_history": ["高血压"]}}});
        sanitize(&mut v, b"k");
        let d = &v["PatientRegistered"]["details"];
        assert!(d.get("name").is_none() && d.get("medical_history").is_none());
        assert_eq!(d["gender"], "female");
        let id = d["id_card"].as_str().unwrap();
        assert!(id.starts_with("hmac-sha256:") && !id.contains("1101"));
        let mut again = json!({"phone": "13800138000"});
        sanitize(&mut again, b"k");
        assert_eq!(again["phone"], d["phone"], "same input, same hash");
    }

    #[test]
    fn event_ids_are_stable() {
        assert_eq!(event_id("patient", "a", 1), event_id("patient", "a", 1));
        assert_ne!(event_id("patient", "a", 1), event_id("patient", "a", 2));
    }
}
