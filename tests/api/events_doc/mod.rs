//! `docs/events.md`, the contract of the Kafka stream, generated from the
//! code and checked against it. Not part of the server: the relay publishes
//! whatever the store holds through `carelog::relay::envelope`; this is the
//! documentation of it and the tests that keep that documentation honest.
//!
//! - [`catalog`]: what each topic and event type means (an exhaustive `match`
//!   per aggregate: a new event variant does not compile until described).
//! - [`story`]: one realistic example of every event type, as one story.
//! - [`markdown`]: `docs/events.md` from both.
//!
//! The tests check that the story holds exactly one example of every variant
//! (the variant list is read from the enum's own `Deserialize`), so a variant
//! without an example fails `cargo test`, that no example envelope leaks
//! personal data, and that `docs/events.md` is up to date:
//!
//! ```sh
//! UPDATE_DOCS=1 cargo test --test api docs_events_md_is_up_to_date
//! ```

mod catalog;
mod markdown;
mod story;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use carelog::relay::envelope::envelope;
use projections::StoredEvent;

use catalog::streams;
use markdown::{markdown, DOCS_PII_KEY};
use story::*;

#[test]
fn the_sample_data_are_valid() {
    assert!(story().is_ok(), "{:?}", story().err());
}

#[test]
fn every_event_variant_has_exactly_one_example() {
    let examples = examples();
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in &examples {
        let st = streams().into_iter().find(|s| s.aggregate_type == e.aggregate_type);
        let st = st.unwrap_or_else(|| panic!("aggregate type {} is not in streams()", e.aggregate_type));
        let (name, sentence) =
            (st.describe)(e).unwrap_or_else(|| panic!("{} payload does not decode: {}", e.event_type, e.payload));
        assert_eq!(name, e.event_type, "describe() and event_type() disagree");
        assert!(!sentence.is_empty());
        seen.entry(st.aggregate_type).or_default().push(e.event_type.clone());
    }
    for st in streams() {
        let mut all = (st.variants)();
        all.sort();
        let mut with_examples = seen.remove(st.aggregate_type).unwrap_or_default();
        with_examples.sort();
        assert_eq!(
            with_examples, all,
            "examples of {} (one per variant)",
            st.aggregate_type
        );
    }
    assert!(seen.is_empty(), "examples of unknown aggregate types: {seen:?}");
    let types: BTreeSet<&str> = streams().iter().map(|s| s.aggregate_type).collect();
    assert_eq!(types.len(), streams().len(), "an aggregate type is listed twice");
}

#[test]
fn examples_are_deterministic_and_consistent() {
    let (a, b) = (examples(), examples());
    let canonical = |events: &[StoredEvent]| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let meta: BTreeMap<_, _> = e.metadata.iter().collect();
                format!(
                    "{} {} {} {} {} {meta:?} {}",
                    e.position, e.aggregate_id, e.sequence, e.event_type, e.payload, e.recorded_at
                )
            })
            .collect()
    };
    assert!(canonical(&a) == canonical(&b), "examples() differ between calls");
    for pair in a.windows(2) {
        assert!(pair[0].position < pair[1].position, "positions increase");
        assert!(pair[0].recorded_at <= pair[1].recorded_at, "times follow positions");
    }
    let mut last: HashMap<(&str, &str), i64> = HashMap::new();
    for e in &a {
        let prev = last
            .insert((&e.aggregate_type, &e.aggregate_id), e.sequence)
            .unwrap_or(0);
        assert!(e.sequence > prev, "sequence of {} {}", e.aggregate_type, e.event_type);
        // Commands of the server itself (escalations) have no actor.
        let by_server = e.metadata.get("user_agent").is_some_and(|ua| ua == "carelog-cli");
        if !by_server {
            assert!(e.metadata.contains_key("actor_id"), "{} lacks actor_id", e.event_type);
        }
        for k in ["ip", "user_agent", "request_id", "correlation_id", "command", "time"] {
            assert!(e.metadata.contains_key(k), "{} lacks {k}", e.event_type);
        }
    }
}

#[test]
fn no_example_envelope_contains_personal_data() {
    let personal = [
        PATIENT_NAME,
        PATIENT_ID_CARD,
        PATIENT_PHONE,
        PATIENT_NEW_PHONE,
        FAMILY_PHONE,
        EMERGENCY_PHONE,
        RECORDER_PHONE,
        HOME_ADDRESS,
        "010-69156114",
    ];
    for e in examples() {
        let json = envelope(&e, DOCS_PII_KEY).to_string();
        for p in personal {
            assert!(!json.contains(p), "{} publishes {p}: {json}", e.event_type);
        }
    }
    // The data are in the examples, so the check above is not vacuous.
    let stored: String = examples().iter().map(|e| e.payload.to_string()).collect();
    for p in personal {
        assert!(stored.contains(p), "no example holds {p}");
    }
}

#[test]
fn docs_events_md_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md");
    let expected = markdown(DOCS_PII_KEY);
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is out of date; regenerate it with: UPDATE_DOCS=1 cargo test --test api docs_events_md_is_up_to_date",
        path.display()
    );
}
