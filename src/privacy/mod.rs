//! Crypto-shredding: personal fields are stored in events encrypted with a key
//! of their data subject, so that destroying the key erases them although the
//! event log is append-only.
//!
//! - Each data subject (a patient, or a family for the household's own fields)
//!   has a random 256-bit data key, kept in `subject_keys` wrapped with
//!   AES-256-GCM under the master key (`CARELOG_MASTER_KEY`).
//! - When events are persisted, the fields [`policy`] names are replaced by
//!   `{"$pii": <subject>, "t": <json type>, "d": <base64 nonce ‖ AES-256-GCM ciphertext>}`
//!   (the subject is the associated data, so a ciphertext cannot be moved to
//!   another subject). Everything else stays in clear: ids, dates, codes,
//!   measured values, statuses — what projections, analytics and the auditor's
//!   timeline need without personal data.
//! - When events are read (aggregate loads, projections, the relay, audit), the
//!   fields are decrypted. Once a subject's key is destroyed, each field reads as
//!   [`ERASED`] (strings), `[]` (lists) or `null` (anything else): the history
//!   still replays, and nothing of the fields can be recovered.

mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use domain::ERASED;
pub use policy::{protected_fields, SubjectRule};

use crate::backend::{on_backend, on_writer, Backend, SqliteDb};

/// Marks an encrypted field.
const MARK: &str = "$pii";
/// Bound of the aggregate → subject cache (entries never change once known).
const CACHE_LIMIT: usize = 50_000;
/// Header of an encrypted blob (then nonce ‖ AES-256-GCM ciphertext).
const BLOB_MAGIC: &[u8] = b"CLGE1\0";

/// The key-encryption key, from `CARELOG_MASTER_KEY` (64 hex digits).
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bytes = hex::decode(raw.trim()).map_err(|_| "must be 64 hexadecimal digits (32 bytes)".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hexadecimal digits (32 bytes)".to_string())?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// A key derived from another secret (used when no master key is set).
    pub fn derive(label: &str, secret: &str) -> Self {
        Self(Sha256::digest(format!("{label}:{secret}").as_bytes()).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A value that identifies the key without revealing it.
    fn check_value(&self) -> String {
        let mut mac = hmac_sha256(&self.0);
        mac.update(b"carelog master key check v1");
        hex::encode(mac.finalize().into_bytes())
    }
}

/// An HMAC-SHA256 under `key`. HMAC takes keys of any length, so this cannot fail.
pub fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("the personal data of {0} were erased; nothing new can be recorded for it")]
    Erased(String),
    #[error("{0} event carries personal fields but its data subject cannot be found")]
    NoSubject(String),
    #[error("key store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot decrypt a field of {0}: the data or its key was altered")]
    Corrupt(String),
    #[error("CARELOG_MASTER_KEY is not the key this event store was created with; refusing to start")]
    WrongMasterKey,
}

/// Encrypts and decrypts personal fields; owns the subject keys.
pub struct Privacy {
    master: Aes256Gcm,
    backend: Backend,
    /// `aggregate_type:aggregate_id` → data subject, for events that do not
    /// name their patient themselves (e.g. a visit's cancellation).
    subjects: Mutex<HashMap<String, String>>,
}

impl Privacy {
    /// Opens the key store and checks `master` is the key it was created with.
    pub async fn open(backend: Backend, master: &MasterKey) -> Result<Arc<Self>, PrivacyError> {
        let check = master.check_value();
        on_writer!(&backend, |pool| sqlx::query(
            "INSERT INTO master_key_check (id, check_value) VALUES (1, $1) ON CONFLICT DO NOTHING"
        )
        .bind(&check)
        .execute(pool)
        .await
        .map(|_| ()))?;
        let stored: String = on_backend!(&backend, |pool| sqlx::query_scalar(
            "SELECT check_value FROM master_key_check WHERE id = 1"
        )
        .fetch_one(pool)
        .await)?;
        if stored != check {
            return Err(PrivacyError::WrongMasterKey);
        }
        Ok(Arc::new(Self {
            master: Aes256Gcm::new(&master.0.into()),
            backend,
            subjects: Mutex::new(HashMap::new()),
        }))
    }

    // ---- persisting ---------------------------------------------------------

    /// Encrypts the personal fields of one event about to be stored.
    pub async fn seal(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &mut Value,
    ) -> Result<(), PrivacyError> {
        let Some((rule, fields)) = policy::protected_fields(aggregate_type) else {
            return Ok(());
        };
        if !has_protected(payload, fields) {
            return Ok(());
        }
        let subject = match rule {
            SubjectRule::Itself => aggregate_id.to_string(),
            SubjectRule::PatientOf => self.patient_of(aggregate_type, aggregate_id, payload).await?,
        };
        let key = match self.key(&subject, true).await? {
            Some(k) => k,
            None => return Err(PrivacyError::Erased(subject)),
        };
        seal_fields(payload, fields, &subject, &key);
        Ok(())
    }

    /// The patient an event is about: its own `patient_id`, else the one named
    /// by the first event of its aggregate (every creation event names it).
    async fn patient_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &Value,
    ) -> Result<String, PrivacyError> {
        let cache_key = format!("{aggregate_type}:{aggregate_id}");
        if let Some(p) = find_str(payload, "patient_id") {
            self.remember_subject(cache_key, p.to_string());
            return Ok(p.to_string());
        }
        if let Some(p) = self
            .subjects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(p.clone());
        }
        let first: Option<String> = match &self.backend {
            Backend::Postgres(pool) => sqlx::query_scalar(
                "SELECT payload::text FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(pool)
            .await?,
            Backend::Sqlite(SqliteDb { read: pool, .. }) => sqlx::query_scalar(
                "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(pool)
            .await?,
        };
        let subject = first
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| find_str(&v, "patient_id").map(str::to_string))
            .ok_or_else(|| PrivacyError::NoSubject(aggregate_type.to_string()))?;
        self.remember_subject(cache_key, subject.clone());
        Ok(subject)
    }

    fn remember_subject(&self, key: String, subject: String) {
        let mut m = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= CACHE_LIMIT {
            m.clear();
        }
        m.insert(key, subject);
    }

    // ---- reading ------------------------------------------------------------

    /// Decrypts every sealed field of a stored payload in place; fields of
    /// erased subjects become their erased form.
    pub async fn open_payload(&self, payload: &mut Value) -> Result<(), PrivacyError> {
        self.open_payloads(std::slice::from_mut(payload)).await
    }

    /// [`Privacy::open_payload`] for many events at once: every subject key
    /// the batch needs is read in one query per few hundred subjects, not one
    /// per event (a replay opens a million events).
    pub async fn open_payloads(&self, payloads: &mut [Value]) -> Result<(), PrivacyError> {
        let mut sealed = Vec::new();
        for p in payloads.iter() {
            collect_sealed(p, &mut sealed);
        }
        if sealed.is_empty() {
            return Ok(());
        }
        sealed.sort_unstable();
        sealed.dedup();
        let keys = self.fetch_many(&sealed).await?;
        for p in payloads.iter_mut() {
            open_fields(p, &keys)?;
        }
        Ok(())
    }

    /// [`Privacy::seal`] for many events at once (the bench seeder): the
    /// subjects' keys are read, and the missing ones created, a few hundred
    /// per statement. Each item is (aggregate type, aggregate id, payload).
    pub async fn seal_many(&self, events: &mut [(&str, String, Value)]) -> Result<(), PrivacyError> {
        let mut subjects: Vec<Option<(String, &'static [&'static str])>> = Vec::with_capacity(events.len());
        for (aggregate_type, aggregate_id, payload) in events.iter() {
            let Some((rule, fields)) = policy::protected_fields(aggregate_type) else {
                subjects.push(None);
                continue;
            };
            if !has_protected(payload, fields) {
                subjects.push(None);
                continue;
            }
            let subject = match rule {
                SubjectRule::Itself => aggregate_id.clone(),
                SubjectRule::PatientOf => self.patient_of(aggregate_type, aggregate_id, payload).await?,
            };
            subjects.push(Some((subject, fields)));
        }
        let mut wanted: Vec<String> = subjects.iter().flatten().map(|(s, _)| s.clone()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut rows = self.fetch_rows(&wanted).await?;
        let missing: Vec<&String> = wanted.iter().filter(|s| !rows.contains_key(*s)).collect();
        for chunk in missing.chunks(500) {
            let marks: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES {} ON CONFLICT DO NOTHING",
                marks.join(", ")
            );
            let wrapped: Vec<String> = chunk.iter().map(|s| self.wrap(s, &rand::random())).collect();
            on_writer!(&self.backend, |pool| {
                let mut q = sqlx::query(&sql);
                for (s, w) in chunk.iter().zip(&wrapped) {
                    q = q.bind(s.as_str()).bind(w.as_str());
                }
                q.execute(pool).await.map(|_| ())
            })?;
        }
        if !missing.is_empty() {
            let created: Vec<String> = missing.into_iter().cloned().collect();
            rows.extend(self.fetch_rows(&created).await?);
        }
        let mut keys: HashMap<String, Aes256Gcm> = HashMap::with_capacity(rows.len());
        for (subject, wrapped) in rows {
            match wrapped {
                Some(w) => {
                    let key = self.unwrap(&subject, &w)?;
                    keys.insert(subject, key);
                }
                None => return Err(PrivacyError::Erased(subject)),
            }
        }
        for ((_, _, payload), subject) in events.iter_mut().zip(subjects) {
            if let Some((subject, fields)) = subject {
                let key = keys
                    .get(&subject)
                    .ok_or_else(|| PrivacyError::Corrupt(subject.clone()))?;
                seal_fields(payload, fields, &subject, key);
            }
        }
        Ok(())
    }

    /// Whose personal data an event holds, by the policy: the patient, the
    /// household or the file itself; `None` for aggregates without personal data.
    pub async fn subject_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &Value,
    ) -> Result<Option<String>, PrivacyError> {
        let Some((rule, _)) = policy::protected_fields(aggregate_type) else {
            return Ok(None);
        };
        match rule {
            SubjectRule::Itself => Ok(Some(aggregate_id.to_string())),
            SubjectRule::PatientOf => match self.patient_of(aggregate_type, aggregate_id, payload).await {
                Ok(s) => Ok(Some(s)),
                Err(PrivacyError::NoSubject(_)) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    // ---- pseudonyms for the event stream ----------------------------------------

    /// A secret of the event's data subject for keyed hashes of its identifiers
    /// on Kafka: derived from the subject's data key, so once the subject is
    /// erased nobody can compute or confirm those hashes any more. `None` for
    /// events without a data subject, or whose subject was erased.
    pub async fn hash_secret(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &Value,
    ) -> Result<Option<[u8; 32]>, PrivacyError> {
        let Some(subject) = self.subject_of(aggregate_type, aggregate_id, payload).await? else {
            return Ok(None);
        };
        let Some(key) = self.key(&subject, false).await? else {
            return Ok(None);
        };
        // A fixed nonce is safe here: one fixed message per key, never another.
        let block = key
            .encrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: b"carelog kafka pseudonym key v1",
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| PrivacyError::Corrupt(subject.clone()))?;
        Ok(Some(Sha256::digest(block).into()))
    }

    // ---- file contents ------------------------------------------------------

    /// Encrypts a file's bytes under the key of `subject` (the file itself), so
    /// a copy of the storage (backup, replica) is unreadable once it is erased.
    pub async fn seal_bytes(&self, subject: &str, label: &str, bytes: &[u8]) -> Result<Vec<u8>, PrivacyError> {
        let key = self
            .key(subject, true)
            .await?
            .ok_or_else(|| PrivacyError::Erased(subject.to_string()))?;
        let nonce: [u8; 12] = rand::random();
        let aad = format!("carelog-blob:{subject}:{label}");
        let ct = key
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: bytes,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| PrivacyError::Corrupt(subject.to_string()))?;
        Ok([BLOB_MAGIC, nonce.as_slice(), &ct].concat())
    }

    /// The bytes of a stored file; `None` once its key is destroyed. Blobs
    /// stored before encryption (no header) are returned as they are.
    pub async fn open_bytes(
        &self,
        subject: &str,
        label: &str,
        stored: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, PrivacyError> {
        let Some(rest) = stored.strip_prefix(BLOB_MAGIC) else {
            return Ok(Some(stored));
        };
        if rest.len() < 12 {
            return Err(PrivacyError::Corrupt(subject.to_string()));
        }
        let Some(key) = self.key(subject, false).await? else {
            return Ok(None);
        };
        let aad = format!("carelog-blob:{subject}:{label}");
        key.decrypt(
            Nonce::from_slice(&rest[..12]),
            Payload {
                msg: &rest[12..],
                aad: aad.as_bytes(),
            },
        )
        .map(Some)
        .map_err(|_| PrivacyError::Corrupt(subject.to_string()))
    }

    // ---- keys -----------------------------------------------------------------

    /// The subject's data key; `None` when it was erased. With `create`, a
    /// subject without a key gets one. Read from the key store every time (one
    /// indexed lookup): an erasure anywhere takes effect on every instance at
    /// once, for writes and reads alike; no process keeps a destroyed key.
    async fn key(&self, subject: &str, create: bool) -> Result<Option<Aes256Gcm>, PrivacyError> {
        match self.fetch(subject).await? {
            Some(found) => Ok(found),
            None if create => {
                let fresh: [u8; 32] = rand::random();
                let wrapped = self.wrap(subject, &fresh);
                on_writer!(&self.backend, |pool| sqlx::query(
                    "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                )
                .bind(subject)
                .bind(&wrapped)
                .execute(pool)
                .await
                .map(|_| ()))?;
                // Another writer (or an erasure) may have won: read back what is stored.
                self.fetch(subject)
                    .await?
                    .ok_or_else(|| PrivacyError::Corrupt(subject.to_string()))
            }
            // No key was ever made: nothing was sealed for this subject.
            None => Ok(None),
        }
    }

    /// The keys of `subjects`: `None` for an erased subject or one without a
    /// key (nothing was sealed for it), as [`Privacy::key`] without creating.
    async fn fetch_many(&self, subjects: &[String]) -> Result<HashMap<String, Option<Aes256Gcm>>, PrivacyError> {
        let rows = self.fetch_rows(subjects).await?;
        let mut keys = HashMap::with_capacity(subjects.len());
        for s in subjects {
            let key = match rows.get(s) {
                Some(Some(w)) => Some(self.unwrap(s, w)?),
                _ => None,
            };
            keys.insert(s.clone(), key);
        }
        Ok(keys)
    }

    /// The stored rows of `subjects` (wrapped key, or `None` once erased),
    /// a few hundred per query; subjects without a row are absent.
    async fn fetch_rows(&self, subjects: &[String]) -> Result<HashMap<String, Option<String>>, PrivacyError> {
        const PER_QUERY: usize = 500;
        let mut found = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(PER_QUERY) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(String, Option<String>)> = on_backend!(&self.backend, |pool| {
                let mut q = sqlx::query_as(&sql);
                for s in chunk {
                    q = q.bind(s);
                }
                q.fetch_all(pool).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// `None`: no row. `Some(None)`: erased. `Some(Some(key))`: live.
    async fn fetch(&self, subject: &str) -> Result<Option<Option<Aes256Gcm>>, PrivacyError> {
        let row: Option<(Option<String>,)> = on_backend!(&self.backend, |pool| sqlx::query_as(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = $1"
        )
        .bind(subject)
        .fetch_optional(pool)
        .await)?;
        match row {
            None => Ok(None),
            Some((None,)) => Ok(Some(None)),
            Some((Some(wrapped),)) => Ok(Some(Some(self.unwrap(subject, &wrapped)?))),
        }
    }

    fn wrap(&self, subject: &str, key: &[u8; 32]) -> String {
        let nonce: [u8; 12] = rand::random();
        let aad = format!("carelog-subject-key:{subject}");
        let ct = self
            .master
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for small inputs");
        B64.encode([nonce.as_slice(), &ct].concat())
    }

    fn unwrap(&self, subject: &str, wrapped: &str) -> Result<Aes256Gcm, PrivacyError> {
        let corrupt = || PrivacyError::Corrupt(subject.to_string());
        let raw = B64.decode(wrapped).map_err(|_| corrupt())?;
        if raw.len() < 12 {
            return Err(corrupt());
        }
        let aad = format!("carelog-subject-key:{subject}");
        let key = self
            .master
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        Aes256Gcm::new_from_slice(&key).map_err(|_| corrupt())
    }

    /// Destroys the subject's key (idempotent). Everything sealed with it
    /// becomes unreadable for good; a tombstone row remembers the erasure.
    pub async fn erase(&self, subject: &str) -> Result<(), PrivacyError> {
        match &self.backend {
            Backend::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO subject_keys (subject_id, wrapped_key, erased_at) VALUES ($1, NULL, now())
                     ON CONFLICT (subject_id) DO UPDATE
                     SET wrapped_key = NULL, erased_at = COALESCE(subject_keys.erased_at, now())",
                )
                .bind(subject)
                .execute(pool)
                .await?;
            }
            Backend::Sqlite(SqliteDb { write: pool, .. }) => {
                sqlx::query(
                    "INSERT INTO subject_keys (subject_id, wrapped_key, erased_at)
                     VALUES ($1, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                     ON CONFLICT (subject_id) DO UPDATE
                     SET wrapped_key = NULL, erased_at = COALESCE(erased_at, excluded.erased_at)",
                )
                .bind(subject)
                .execute(pool)
                .await?;
                // Freed pages are zeroed (secure_delete); also move the WAL
                // into the main file so no old page image stays in the log.
                checkpoint_wal(pool).await?;
            }
        }
        Ok(())
    }

    /// Whether the subject's key was destroyed.
    pub async fn is_erased(&self, subject: &str) -> Result<bool, PrivacyError> {
        Ok(matches!(self.fetch(subject).await?, Some(None)))
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` until no reader holds it back (bounded):
/// the main file then has the new pages and the log is emptied.
async fn checkpoint_wal(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    for _ in 0..50 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tracing::warn!(
        "the event store's write-ahead log could not be emptied after an erasure; it will be at the next checkpoint"
    );
    Ok(())
}

// ---- JSON walking (pure) ------------------------------------------------------

fn has_protected(v: &Value, fields: &[&str]) -> bool {
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

fn type_tag(v: &Value) -> &'static str {
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
fn field_aad(subject: &str, field: &str, tag: &str) -> Vec<u8> {
    format!("{subject}\0{field}\0{tag}").into_bytes()
}

fn seal_fields(v: &mut Value, fields: &[&str], subject: &str, key: &Aes256Gcm) {
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

fn seal_value(v: &Value, field: &str, subject: &str, key: &Aes256Gcm) -> Value {
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

fn sealed_subject(v: &Value) -> Option<&str> {
    v.as_object()
        .filter(|m| m.len() == 3)
        .and_then(|m| m.get(MARK))
        .and_then(Value::as_str)
}

fn collect_sealed(v: &Value, out: &mut Vec<String>) {
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

fn open_fields(v: &mut Value, keys: &HashMap<String, Option<Aes256Gcm>>) -> Result<(), PrivacyError> {
    match v {
        Value::Object(m) => m.iter_mut().try_for_each(|(field, val)| {
            let Some(subject) = sealed_subject(val).map(str::to_string) else {
                return open_fields(val, keys);
            };
            let tag = val.get("t").and_then(Value::as_str).unwrap_or("s").to_string();
            let data = val.get("d").and_then(Value::as_str).unwrap_or_default().to_string();
            *val = match keys.get(&subject).cloned().flatten() {
                None => erased_form(&tag),
                Some(key) => open_value(&subject, &field_aad(&subject, field, &tag), &data, &key)?,
            };
            Ok(())
        }),
        Value::Array(a) => a.iter_mut().try_for_each(|v| open_fields(v, keys)),
        _ => Ok(()),
    }
}

fn open_value(subject: &str, aad: &[u8], data: &str, key: &Aes256Gcm) -> Result<Value, PrivacyError> {
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
fn erased_form(tag: &str) -> Value {
    match tag {
        "s" => Value::String(ERASED.into()),
        "a" => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
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
