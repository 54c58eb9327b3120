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
//!
//! Layout: `keys` (the key store), `seal` (sealing and opening JSON fields,
//! pure), `policy` (which fields of which events are personal, and whose);
//! this module puts them together for the event store.

mod keys;
mod policy;
mod seal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use domain::ERASED;
pub use policy::{protected_fields, SubjectRule};

use crate::backend::{on_backend, on_writer, Backend, SqliteDb};
pub(crate) use seal::find_str;
use seal::*;

/// Marks an encrypted field.
pub(crate) const MARK: &str = "$pii";
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

/// Data keys made while sealing one command's events, not stored yet: the
/// append that stores the events stores them too (`(subject, wrapped key)`
/// rows, see [`FreshKeys::rows`]).
#[derive(Default)]
pub struct FreshKeys {
    made: Vec<(String, String, Aes256Gcm)>,
    /// A subject assumed to have no key yet (a new aggregate that is its own
    /// subject): its key is made without a lookup. Were the assumption wrong,
    /// storing the key with the events conflicts and the command retries.
    unkeyed: Option<String>,
}

impl FreshKeys {
    /// For the events of a new aggregate `subject`, assumed to have no key.
    pub fn for_new(subject: Option<String>) -> Self {
        Self {
            made: Vec::new(),
            unkeyed: subject,
        }
    }

    fn get(&self, subject: &str) -> Option<&Aes256Gcm> {
        self.made.iter().find(|(s, _, _)| s == subject).map(|(_, _, k)| k)
    }

    /// `(subject, wrapped key)` for `subject_keys`.
    pub fn rows(&self) -> Vec<(String, String)> {
        self.made.iter().map(|(s, w, _)| (s.clone(), w.clone())).collect()
    }
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

    /// Whether events of `aggregate_type` can hold personal fields to seal
    /// (those of any other type are stored as they are).
    pub fn protects(aggregate_type: &str) -> bool {
        policy::protected_fields(aggregate_type).is_some()
    }

    /// Encrypts the personal fields of one event about to be stored. A
    /// subject without a key gets a fresh one, kept in `fresh` (and reused by
    /// the command's later events): the caller stores it in the transaction
    /// that appends the events, so a key is stored exactly when the data
    /// sealed with it is, and a subject whose key appeared (or was erased)
    /// meanwhile makes that append conflict and the command retry.
    pub async fn seal(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &mut Value,
        fresh: &mut FreshKeys,
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
        if let Some(key) = fresh.get(&subject) {
            seal_fields(payload, fields, &subject, key);
            return Ok(());
        }
        let stored = match fresh.unkeyed.as_deref() == Some(subject.as_str()) {
            true => None,
            false => self.fetch(&subject).await?,
        };
        match stored {
            Some(Some(key)) => seal_fields(payload, fields, &subject, &key),
            Some(None) => return Err(PrivacyError::Erased(subject)),
            None => {
                let raw: [u8; 32] = rand::random();
                let wrapped = self.wrap(&subject, &raw);
                let key = Aes256Gcm::new(&raw.into());
                seal_fields(payload, fields, &subject, &key);
                fresh.made.push((subject, wrapped, key));
            }
        }
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
            let sql = format!(
                "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES {} ON CONFLICT DO NOTHING",
                self.backend.placeholders(chunk.len(), 2)
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
        // Staff phones are keyed with the PII key alone (docs/events.md): a
        // user's own key seals only their WeChat openid, never published.
        if aggregate_type == "user" {
            return Ok(None);
        }
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
}
