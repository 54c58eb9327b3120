//! `docs/events.md` from the code: the envelope, the topics, the privacy
//! rules of `carelog::relay::envelope`, and every event type of
//! [`super::catalog::streams`] with its fields and the example of
//! [`super::story`] enveloped as the relay would publish it.

use chrono::{DateTime, NaiveDate, NaiveTime};
use projections::StoredEvent;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use carelog::relay::envelope::{envelope, topic, HASHED_FIELDS, OMITTED_FIELDS};

use super::catalog::streams;
use super::story::story;

/// The key of the keyed hashes in `docs/events.md`.
pub const DOCS_PII_KEY: &[u8] = b"docs-example-key";

/// The JSON type of a value, with a hint for strings of a known shape.
fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null in this example".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) if n.is_f64() => "number".into(),
        Value::Number(_) => "integer".into(),
        Value::String(s) => {
            let hint = if s.starts_with("hmac-sha256:") {
                Some("keyed hash")
            } else if Uuid::parse_str(s).is_ok() {
                Some("uuid")
            } else if DateTime::parse_from_rfc3339(s).is_ok() {
                Some("date-time")
            } else if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                Some("date")
            } else if NaiveTime::parse_from_str(s, "%H:%M:%S").is_ok() {
                Some("time")
            } else if s.contains('.') && s.parse::<Decimal>().is_ok() {
                Some("decimal")
            } else {
                None
            };
            match hint {
                Some(h) => format!("string ({h})"),
                None => "string".into(),
            }
        }
        Value::Array(items) => match items.first() {
            Some(first) => format!("array of {}", json_type(first)),
            None => "array".into(),
        },
        Value::Object(_) => "object".into(),
    }
}

fn code_list(items: &[&str]) -> String {
    items.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

const ENVELOPE_FIELDS: &[(&str, &str, &str)] = &[
    ("specversion", "string", "Always `\"1.0\"` (CloudEvents 1.0, structured mode)."),
    ("id", "string (uuid)", "Stable event id: UUID v5 of `<aggregate_type>:<aggregate_id>:<sequence>`. The same event always has the same id, also when re-published: **consumers deduplicate on it**."),
    ("source", "string", "`carelog/<aggregate_type>`."),
    ("type", "string", "`carelog.<aggregate_type>.<EventType>`, e.g. `carelog.appointment.VisitCompleted`."),
    ("subject", "string (uuid)", "The aggregate id (also the Kafka message key)."),
    ("time", "string (date-time)", "When the event was recorded, UTC with milliseconds (`2026-03-05T01:20:00.000Z`). Convert to Asia/Shanghai for local days."),
    ("datacontenttype", "string", "Always `application/json`."),
    ("dataschemaversion", "string", "Version of the event's schema (`1.0` for all events today); a breaking change of `data` gets a new version."),
    ("aggregatetype", "string", "The aggregate type, as in the topic name."),
    ("sequence", "integer", "Position of the event in its aggregate's history, from 1, without gaps."),
    ("position", "integer", "Global position in the event store; increases with commit order across all aggregates (may have gaps)."),
    ("actorid", "string (uuid) or null", "User id of who issued the command; null for commands of the server itself."),
    ("actorrole", "string or null", "`admin`, `recorder`, `doctor` or `auditor`; null when unknown (login, server commands)."),
    ("correlationid", "string or null", "Ties together the events caused by one request (the `X-Correlation-Id` header, else the request id)."),
    ("command", "string or null", "The command that produced the event, e.g. `RecordVitals`."),
    ("data", "object", "The event's own fields, sanitised (see *Personal data*). For events without fields it is the event name as a string."),
];

/// `docs/events.md`: the envelope, topics, privacy rules and every event type
/// with its fields and a full example envelope hashed with `pii_key`.
pub fn markdown(pii_key: &[u8]) -> String {
    let (events, problem) = match story() {
        Ok(events) => (events, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let streams = streams();
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };

    line("# Events on Kafka");
    line("");
    line("<!-- Generated from tests/api/events_doc/ by `UPDATE_DOCS=1 cargo test --test api docs_events_md_is_up_to_date`. Do not edit by hand. -->");
    line("");
    line(
        "carelog publishes every event of its event store to Kafka, so that other systems (analytics, reporting, \
          messaging) can follow what happens without querying the API. The relay reads the store in global \
          order and publishes each event as a CloudEvents 1.0 JSON \
          envelope (structured mode). It runs when `CARELOG_KAFKA_BROKERS` is set.",
    );
    if let Some(p) = &problem {
        line("");
        line(&format!("> **The example data are invalid: {p}**"));
    }
    line("");
    line("## Topics and delivery");
    line("");
    line(
        "- **One topic per aggregate type**: `carelog.<aggregate_type>` (the prefix `carelog.` is \
          `CARELOG_KAFKA_TOPIC_PREFIX`). Subscribe only to the streams you need.",
    );
    line(
        "- **Key = aggregate id** (the envelope's `subject`). All events of one aggregate go to the same \
          partition, so they arrive **in order** (by `sequence`). There is no order between different \
          aggregates or topics; use `position` or `time` if you need one.",
    );
    line(
        "- **Delivery is at-least-once.** The relay moves its checkpoint only over events the broker \
          acknowledged, so after a crash or a broker outage the unacknowledged tail is published again, with \
          the same `id`s. Deduplicate on `id`.",
    );
    line(
        "- Headers: `ce_id` (= `id`), `ce_type` (= `type`) and `content-type: application/cloudevents+json`, \
          so a consumer can filter without parsing the body.",
    );
    line("- Publishing never blocks the API: when the broker is down, commands go on and the relay catches up later.");
    line("");
    line("| topic | events | what it carries |");
    line("|---|---|---|");
    for st in &streams {
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e.aggregate_type == st.aggregate_type)
            .map(|e| e.event_type.as_str())
            .collect();
        let links = names
            .iter()
            .map(|n| format!("[{n}](#{})", anchor(st.aggregate_type, n)))
            .collect::<Vec<_>>()
            .join(", ");
        line(&format!(
            "| `{}` | {links} | {} |",
            topic("carelog.", st.aggregate_type),
            st.summary
        ));
    }
    line("");
    line("## Envelope");
    line("");
    line("| field | type | meaning |");
    line("|---|---|---|");
    for (field, ty, meaning) in ENVELOPE_FIELDS {
        line(&format!("| `{field}` | {ty} | {meaning} |"));
    }
    line("");
    line("## Personal data");
    line("");
    line(
        "Whatever reaches Kafka cannot be recalled, so personal data are kept out from the start. \
          The rule applies to `data` at any depth, by field name:",
    );
    line("");
    line(&format!(
        "- **Hashed**: {}. Published as `hmac-sha256:<64 hex digits>`, an HMAC-SHA256 keyed with \
         `CARELOG_KAFKA_PII_KEY` combined with a secret of the event's data subject (the patient, or the \
         household for the family's own phones; derived from the key that encrypts their data in the event \
         store). Within one subject the same value always gives the same hash, so consumers can see that an \
         identifier changed or not without seeing it; without the keys the value cannot be recovered by trying \
         candidates, and once the subject is erased nobody can compute or confirm those hashes any more. \
         Staff phones are keyed with `CARELOG_KAFKA_PII_KEY` alone.",
        code_list(HASHED_FIELDS)
    ));
    line(&format!(
        "- **Left out**: {}. Names, addresses, positions, free text about health, secrets and file names \
         never leave carelog; ids, dates, codes, measured values and statuses do.",
        code_list(OMITTED_FIELDS)
    ));
    line("");
    line(&format!(
        "The examples below are hashed with the key `{}`, so their hashes differ from production ones.",
        String::from_utf8_lossy(pii_key)
    ));
    line("");
    line("## Event types");
    for st in &streams {
        let of_stream: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == st.aggregate_type)
            .collect();
        line("");
        line(&format!("### Topic `{}`", topic("carelog.", st.aggregate_type)));
        line("");
        line(st.summary);
        for e in of_stream {
            let sentence = (st.describe)(e).map(|(_, s)| s).unwrap_or("");
            let env = envelope(e, pii_key);
            line("");
            line(&format!("<a id=\"{}\"></a>", anchor(st.aggregate_type, &e.event_type)));
            line(&format!("#### `carelog.{}.{}`", e.aggregate_type, e.event_type));
            line("");
            line(sentence);
            line("");
            match env.get("data") {
                Some(Value::Object(fields)) if fields.is_empty() => {
                    line("`data` has no fields that may be published: it is `{}`.");
                }
                Some(Value::Object(fields)) => {
                    line("| `data` field | type |");
                    line("|---|---|");
                    for (k, v) in fields {
                        line(&format!("| `{k}` | {} |", json_type(v)));
                    }
                }
                Some(other) => line(&format!("`data` has no fields: it is `{other}`.")),
                None => line("The envelope has no `data`."),
            }
            line("");
            line("```json");
            line(&serde_json::to_string_pretty(&env).unwrap_or_default());
            line("```");
        }
    }
    out
}

/// The HTML anchor of an event type's section.
fn anchor(aggregate_type: &str, event_type: &str) -> String {
    format!("{}-{}", aggregate_type.replace('_', "-"), event_type.to_lowercase())
}
