//! The auditor's history: the stored events of a filter, one page, with who
//! caused each, from where and when, and its link in the hash chain; personal
//! fields of erased patients read as erased. Reading it is itself a read of
//! the patients' data the events are about, and is logged as such.

use projections::page::{capped_count_limit, whole_total, AUDIT_TOTAL_CAP};
use projections::{Page, PageParams};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::app::error::AppError;
use crate::audit::redact;
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::EventFilter;

/// One event as the auditor sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Global position (commit order).
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position in the aggregate's own history, from 1.
    pub sequence: i64,
    /// The event type, e.g. `PatientRegistered`.
    pub r#type: String,
    /// Same as `type`.
    pub event_type: String,
    pub event_version: String,
    /// The event as stored: `{"<EventType>": {fields}}`, or the event type's
    /// name alone (a string) for an event without fields. Personal fields of
    /// erased patients read as erased.
    #[schema(value_type = Value)]
    pub payload: Value,
    /// Who caused the event (user id; null for the server's own commands).
    pub actor: Option<String>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The command that produced the event.
    pub command: Option<String>,
    /// For a command replayed by offline sync: the client's command id, its device,
    /// and when the device captured it (`recorded_at` stays the server's time).
    pub sync_command_id: Option<String>,
    pub device_id: Option<String>,
    pub captured_at: Option<String>,
    pub recorded_at: String,
    /// Same as `recorded_at`.
    pub time: String,
    /// The event's link in the hash chain (null until sealed, milliseconds after commit).
    pub hash: Option<String>,
}

/// One page of the events `filter` selects, oldest first. Auditors and admins
/// (the handler checks the role).
pub async fn events(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    filter: EventFilter,
    paging: PageParams,
) -> Result<Page<AuditEvent>, AppError> {
    let (raw, hashes): (Vec<_>, Vec<_>) = state
        .store
        .query_sealed(&filter, paging.limit(), paging.offset())
        .await?
        .into_iter()
        .unzip();
    // A short first page is the whole history (most patients'): no count.
    // Otherwise a count as far as the cap (a whole store's history is
    // millions of events).
    let limit = capped_count_limit(AUDIT_TOTAL_CAP, paging);
    let counted = match whole_total(paging, raw.len()) {
        Some(_) => None,
        None => Some(state.store.count(&filter, limit).await?),
    };
    let mut items = Vec::with_capacity(raw.len());
    let opened = state.store.open_many(raw).await.map_err(AppError::internal)?;
    for (e, hash) in opened.into_iter().zip(hashes) {
        let mut payload = e.payload;
        redact(&mut payload);
        let meta = |k: &str| e.metadata.get(k).filter(|s| !s.is_empty()).cloned();
        items.push(AuditEvent {
            position: e.position,
            sequence: e.sequence,
            r#type: e.event_type.clone(),
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            payload,
            actor: meta("actor_id"),
            actor_id: meta("actor_id"),
            actor_role: meta("actor_role"),
            ip: meta("ip"),
            user_agent: meta("user_agent"),
            request_id: meta("request_id"),
            correlation_id: meta("correlation_id"),
            command: meta("command"),
            sync_command_id: meta("sync_command_id"),
            device_id: meta("device_id"),
            captured_at: meta("captured_at"),
            recorded_at: projections::store::instant(e.recorded_at),
            time: projections::store::instant(e.recorded_at),
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            hash,
        });
    }
    // Auditors' reads of patient data are themselves logged.
    let mut patients: Vec<String> = filter.patient_id.iter().cloned().collect();
    for e in &items {
        if let Some(patient) = patient_of(state, e).await? {
            patients.push(patient);
        }
    }
    patients.sort();
    patients.dedup();
    state.access.patients(p, origin, &patients).await?;
    Ok(Page::from_count(items, counted, limit, paging))
}

/// The patient an event is about (none for households, files and staff).
async fn patient_of(state: &AppState, e: &AuditEvent) -> Result<Option<String>, AppError> {
    if matches!(e.aggregate_type.as_str(), "family" | "file") {
        return Ok(None);
    }
    state
        .store
        .privacy()
        .subject_of(&e.aggregate_type, &e.aggregate_id, &e.payload)
        .await
        .map_err(AppError::internal)
}
