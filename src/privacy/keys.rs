//! The key store: each data subject's key, wrapped under the master key in
//! `subject_keys`, created on first use (for events: made while sealing them
//! and stored in the transaction that appends them, see `Privacy::seal`),
//! read on every use (never cached, so an erasure takes effect everywhere at
//! once), and destroyed by an erasure.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{Privacy, PrivacyError};
use crate::backend::{on_backend, on_writer, Backend, SqliteDb};

impl Privacy {
    /// The subject's data key; `None` when it was erased. With `create`, a
    /// subject without a key gets one. Read from the key store every time (one
    /// indexed lookup): an erasure anywhere takes effect on every instance at
    /// once, for writes and reads alike; no process keeps a destroyed key.
    pub(super) async fn key(&self, subject: &str, create: bool) -> Result<Option<Aes256Gcm>, PrivacyError> {
        match self.fetch(subject).await? {
            Some(found) => Ok(found),
            None if create => {
                let fresh: [u8; 32] = rand::random();
                let wrapped = self.wrap(subject, &fresh);
                let stored = on_writer!(&self.backend, |pool| sqlx::query(
                    "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                )
                .bind(subject)
                .bind(&wrapped)
                .execute(pool)
                .await
                .map(|done| done.rows_affected() == 1))?;
                if stored {
                    return Ok(Some(Aes256Gcm::new(&fresh.into())));
                }
                // Another writer (or an erasure) won: read back what is stored.
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
    pub(super) async fn fetch_many(
        &self,
        subjects: &[String],
    ) -> Result<HashMap<String, Option<Aes256Gcm>>, PrivacyError> {
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
    pub(super) async fn fetch_rows(
        &self,
        subjects: &[String],
    ) -> Result<HashMap<String, Option<String>>, PrivacyError> {
        const PER_QUERY: usize = 500;
        let mut found = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(PER_QUERY) {
            let sql = format!(
                "SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN ({})",
                self.backend.placeholders(chunk.len(), 1)
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
    pub(super) async fn fetch(&self, subject: &str) -> Result<Option<Option<Aes256Gcm>>, PrivacyError> {
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

    pub(super) fn wrap(&self, subject: &str, key: &[u8; 32]) -> String {
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

    pub(super) fn unwrap(&self, subject: &str, wrapped: &str) -> Result<Aes256Gcm, PrivacyError> {
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
pub(super) async fn checkpoint_wal(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
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
