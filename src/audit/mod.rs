//! Audit: tamper evidence over the event log and point-in-time replay.
//!
//! **Hash chain.** Every event gets `hash = SHA-256(previous hash ‖ event)`,
//! chained *globally* in position order (one chain for the whole store, so
//! deleting, inserting or reordering events anywhere breaks it, not only
//! editing one stream). The event part covers, length-prefixed: position,
//! aggregate type and id, sequence, event type and version, recorded time,
//! metadata and payload exactly as stored (personal fields sealed, so erasure
//! does not break the chain). The chain starts from 64 zeros.
//!
//! The hashes are written by the *sealer*, a follower like the projectors (one
//! leader across instances), into `event_hashes`, normally milliseconds after
//! the commit. `carelog audit verify` recomputes the chain from the events and
//! names the first position whose content no longer matches, whose hash is
//! missing, or whose event is gone. Limits: an edit made before the sealer saw
//! the event is sealed as it is; someone able to rewrite both the events and
//! every later hash can forge a consistent chain — anchor the chain head
//! (`verify` prints it) somewhere they cannot write, e.g. in operations logs.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::follower::{Follower, Step};
use crate::store::{on_backend, on_writer, Backend, EventFilter, EventStore, RawEvent};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const BATCH: i64 = 500;

/// The chained hash of `e` after `prev`.
pub fn chain_hash(prev: &str, e: &RawEvent) -> String {
    let mut h = Sha256::new();
    let position = e.position.to_string();
    let sequence = e.sequence.to_string();
    for part in [
        prev,
        &position,
        &e.aggregate_type,
        &e.aggregate_id,
        &sequence,
        &e.event_type,
        &e.event_version,
        &e.recorded_at,
        &e.metadata,
        &e.payload,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The last sealed position and its hash (0 and the genesis when none).
async fn chain_head(store: &EventStore) -> Result<(i64, String), sqlx::Error> {
    let row: Option<(i64, String)> = on_backend!(store.backend(), |pool| sqlx::query_as(
        "SELECT position, hash FROM event_hashes ORDER BY position DESC LIMIT 1"
    )
    .fetch_optional(pool)
    .await)?;
    Ok(row.unwrap_or_else(|| (0, GENESIS.to_string())))
}

/// Seals the next batch of events after the chain's head `head` (read from
/// the store when `None`); whether more may follow at once (see
/// [`crate::store::Batch`]). `head` moves to the new head,
/// or is forgotten (`None`) when some of the batch was sealed already by
/// someone else, so the next batch starts from what is stored.
async fn seal_batch(store: &EventStore, head: &mut Option<(i64, String)>) -> Result<bool, sqlx::Error> {
    let (after, mut prev) = match head.take() {
        Some(known) => known,
        None => chain_head(store).await?,
    };
    let crate::store::Batch { events, more } = store.next_raw_batch(after, BATCH).await?;
    if events.is_empty() {
        *head = Some((after, prev));
        return Ok(false);
    }
    let hashes: Vec<(i64, String)> = events
        .iter()
        .map(|e| {
            prev = chain_hash(&prev, e);
            (e.position, prev.clone())
        })
        .collect();
    let sql = format!(
        "INSERT INTO event_hashes (position, hash) VALUES {} ON CONFLICT DO NOTHING",
        store.backend().placeholders(hashes.len(), 2)
    );
    let stored = on_writer!(store.backend(), |pool| {
        let mut q = sqlx::query(&sql);
        for (p, h) in &hashes {
            q = q.bind(*p).bind(h.as_str());
        }
        q.execute(pool).await.map(|done| done.rows_affected())
    })?;
    if stored == hashes.len() as u64 {
        *head = hashes.last().cloned();
    }
    Ok(more)
}

/// Follows the store and seals every event (one sealer across instances).
pub fn start_sealer(store: EventStore) -> JoinHandle<()> {
    crate::follower::spawn(store.clone(), Sealer { store, head: None })
}

/// The sealer as a follower: its checkpoint is the chain's head (the last
/// sealed position), which each batch moves in the same statement that
/// stores the hashes; not replayable (`event_hashes` refuses changes).
struct Sealer {
    store: EventStore,
    /// The chain's head after this sealer's last batch (`None`: read it).
    /// It leads, so no one else moves the head meanwhile.
    head: Option<(i64, String)>,
}

#[async_trait::async_trait]
impl Follower for Sealer {
    fn name(&self) -> String {
        "sealer".into()
    }
    fn replayable(&self) -> bool {
        false
    }
    fn idle(&self) -> Duration {
        Duration::from_millis(500)
    }
    fn backoff(&self) -> (Duration, Duration) {
        (Duration::from_secs(2), Duration::from_secs(30))
    }
    async fn checkpoint(&self) -> anyhow::Result<i64> {
        Ok(chain_head(&self.store).await?.0)
    }
    async fn step(&mut self) -> anyhow::Result<Step> {
        Ok(if seal_batch(&self.store, &mut self.head).await? {
            Step::Moved
        } else {
            Step::CaughtUp
        })
    }
}

/// What `carelog audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events whose sealed hash was recomputed and matched.
    pub verified: i64,
    /// Events after the last sealed one (not sealed yet).
    pub unsealed: i64,
    /// Position and hash of the last verified event.
    pub head: (i64, String),
    /// The first broken link: position and what is wrong.
    pub broken: Option<(i64, String)>,
}

/// Recomputes the whole chain from the events.
pub async fn verify(store: &EventStore) -> Result<Verification, sqlx::Error> {
    let mut v = Verification {
        verified: 0,
        unsealed: 0,
        head: (0, GENESIS.to_string()),
        broken: None,
    };
    let mut prev = GENESIS.to_string();
    let mut after = 0;
    let mut first_unsealed: Option<i64> = None;
    'outer: loop {
        let events = store.read_raw_after(after, 1000).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        let stored: HashMap<i64, String> = on_backend!(store.backend(), |pool| sqlx::query_as::<_, (i64, String)>(
            "SELECT position, hash FROM event_hashes WHERE position > $1 AND position <= $2"
        )
        .bind(after)
        .bind(last)
        .fetch_all(pool)
        .await)?
        .into_iter()
        .collect();
        for e in &events {
            let computed = chain_hash(&prev, e);
            match stored.get(&e.position) {
                Some(_) if first_unsealed.is_some() => {
                    v.broken = Some((
                        first_unsealed.unwrap_or(e.position),
                        "its hash is missing although later events are sealed".into(),
                    ));
                    break 'outer;
                }
                Some(h) if *h == computed => {
                    v.verified += 1;
                    v.head = (e.position, computed.clone());
                }
                Some(_) => {
                    v.broken = Some((
                        e.position,
                        format!(
                            "{} {} #{} ({}) does not match its sealed hash: the event or one before it was altered",
                            e.aggregate_type, e.aggregate_id, e.sequence, e.event_type
                        ),
                    ));
                    break 'outer;
                }
                None => {
                    first_unsealed.get_or_insert(e.position);
                    v.unsealed += 1;
                }
            }
            prev = computed;
        }
        after = last;
    }
    // A sealed position without its event: the event was deleted.
    let orphan: Option<i64> = on_backend!(store.backend(), |pool| sqlx::query_scalar(
        "SELECT MIN(h.position) FROM event_hashes h LEFT JOIN events e ON e.position = h.position
         WHERE e.position IS NULL"
    )
    .fetch_one(pool)
    .await)?;
    if let Some(p) = orphan {
        if v.broken.as_ref().is_none_or(|(b, _)| p < *b) {
            v.broken = Some((p, "the event was deleted (its hash remains)".into()));
        }
    }
    Ok(v)
}

// ---- point-in-time state ---------------------------------------------------------

/// An aggregate's state as of an instant.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StateAsOf {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub as_of: DateTime<Utc>,
    /// Events applied (the aggregate's version at that instant).
    pub version: i64,
    /// When the last applied event was recorded.
    pub last_event_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub state: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("unknown aggregate type {0}")]
    UnknownType(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The aggregate types an auditor can replay.
pub const AGGREGATE_TYPES: &[&str] = &[
    "user",
    "service_package",
    "family",
    "patient",
    "subscription",
    "appointment",
    "file",
    "health_record",
    "order_request",
    "medical_order",
    "inbox",
    "hospital",
    "hospital_slot",
    "hospital_appointment",
    "evv_exception",
    "job_run",
];

/// Replays `aggregate_type`/`id` from its events recorded up to `as_of`.
/// `None` when it had no events by then.
pub async fn state_as_of(
    store: &EventStore,
    aggregate_type: &str,
    id: &str,
    as_of: DateTime<Utc>,
) -> Result<Option<StateAsOf>, ReplayError> {
    use domain::*;
    if !AGGREGATE_TYPES.contains(&aggregate_type) {
        return Err(ReplayError::UnknownType(aggregate_type.to_string()));
    }
    let filter = EventFilter {
        aggregate_type: Some(aggregate_type.to_string()),
        aggregate_id: Some(id.to_string()),
        to: Some(as_of),
        ..Default::default()
    };
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let raw = store
            .query_raw(&filter, after, 1000, 0)
            .await
            .map_err(anyhow::Error::from)?;
        let Some(last) = raw.last().map(|e| e.position) else {
            break;
        };
        events.extend(store.open_many(raw).await?);
        after = last;
    }
    let Some(last) = events.last() else {
        return Ok(None);
    };
    let mut state = match aggregate_type {
        "user" => replay::<user::User>(&events),
        "service_package" => replay::<package::ServicePackage>(&events),
        "family" => replay::<family::Family>(&events),
        "patient" => replay::<patient::Patient>(&events),
        "subscription" => replay::<subscription::Subscription>(&events),
        "appointment" => replay::<visit::Visit>(&events),
        "file" => replay::<file::StoredFile>(&events),
        "health_record" => replay::<health_record::HealthRecord>(&events),
        "order_request" => replay::<order::OrderRequest>(&events),
        "medical_order" => replay::<order::MedicalOrder>(&events),
        "inbox" => replay::<inbox::Inbox>(&events),
        "hospital" => replay::<hospital::Hospital>(&events),
        "hospital_slot" => replay::<hospital::Slot>(&events),
        "hospital_appointment" => replay::<booking::HospitalBooking>(&events),
        "evv_exception" => replay::<evv::EvvException>(&events),
        "job_run" => replay::<job::JobRun>(&events),
        other => return Err(ReplayError::UnknownType(other.to_string())),
    }?;
    redact(&mut state);
    Ok(Some(StateAsOf {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id: id.to_string(),
        as_of,
        version: last.sequence,
        last_event_at: last.recorded_at,
        state,
    }))
}

fn replay<A: Aggregate>(events: &[projections::StoredEvent]) -> Result<Value, ReplayError> {
    let mut aggregate = A::default();
    for e in events {
        let event: A::Event = e.decode().map_err(anyhow::Error::from)?;
        aggregate.apply(event);
    }
    serde_json::to_value(&aggregate).map_err(|e| ReplayError::Other(e.into()))
}

/// Secrets that even auditors do not see (password hashes).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                // Secrets, and the WeChat openid (a user's state keeps it to send messages).
                if (k == "password_hash" || k == "openid") && !val.is_null() {
                    *val = Value::String("[redacted]".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64, payload: &str) -> RawEvent {
        RawEvent {
            position,
            aggregate_type: "patient".into(),
            aggregate_id: "p".into(),
            sequence: position,
            event_type: "PatientUpdated".into(),
            event_version: "1.0".into(),
            payload: payload.into(),
            metadata: "{}".into(),
            recorded_at: "2026-11-24T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn the_hash_covers_the_payload_and_the_previous_hash() {
        let a = chain_hash(GENESIS, &event(1, r#"{"a":1}"#));
        assert_eq!(a.len(), 64);
        assert_eq!(a, chain_hash(GENESIS, &event(1, r#"{"a":1}"#)));
        assert_ne!(a, chain_hash(GENESIS, &event(1, r#"{"a":2}"#)));
        assert_ne!(a, chain_hash(&"1".repeat(64), &event(1, r#"{"a":1}"#)));
        assert_ne!(a, chain_hash(GENESIS, &event(2, r#"{"a":1}"#)));
    }

    #[test]
    fn password_hashes_are_redacted_at_any_depth() {
        let mut v = serde_json::json!({"UserCreated": {"password_hash": "$argon2id$x", "name": "a"}});
        redact(&mut v);
        assert_eq!(v["UserCreated"]["password_hash"], "[redacted]");
        assert_eq!(v["UserCreated"]["name"], "a");
        let mut v = serde_json::json!({"wechat": {"openid_hash": "h", "openid": "o1"}});
        redact(&mut v);
        assert_eq!(v["wechat"]["openid"], "[redacted]");
        assert_eq!(v["wechat"]["openid_hash"], "h");
    }
}
