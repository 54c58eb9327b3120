//! Queries the erasure of a patient needs: what to delete besides the key.

use domain::ids::{FamilyId, FileId, PatientId};

use crate::store::{ReadStore, RowExt};

/// A stored file's blobs.
#[derive(Debug, Clone)]
pub struct FileBlobs {
    pub id: FileId,
    pub storage_key: String,
    pub thumbnail_key: Option<String>,
}

impl ReadStore {
    /// What an erasure reads of the read models.
    pub fn erasure(&self) -> Erasure<'_> {
        Erasure(self)
    }
}

/// Queries of the erasure of a patient.
#[derive(Clone, Copy)]
pub struct Erasure<'a>(&'a ReadStore);

impl Erasure<'_> {
    /// The files attached to the patient's health records.
    pub async fn patient_files(self, patient: PatientId) -> Result<Vec<FileBlobs>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT f.id, f.storage_key, f.thumbnail_key FROM files f
             JOIN health_record_files rf ON rf.file_id = f.id
             JOIN health_records r ON r.id = rf.record_id
             WHERE r.patient_id = ?",
        )
        .bind(patient.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FileBlobs {
                    id: r.id("id")?,
                    storage_key: r.text("storage_key")?,
                    thumbnail_key: r.opt_text("thumbnail_key")?,
                })
            })
            .collect()
    }

    /// Whether the patient's personal data were erased.
    pub async fn patient_erased(self, patient: PatientId) -> Result<bool, sqlx::Error> {
        let at: Option<Option<String>> = sqlx::query_scalar("SELECT erased_at FROM patients WHERE id = ?")
            .bind(patient.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        Ok(matches!(at, Some(Some(_))))
    }

    /// How many of the family's patients still have their personal data.
    pub async fn family_live_patients(self, family: FamilyId) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM patients WHERE family_id = ? AND erased_at IS NULL")
            .bind(family.to_string())
            .fetch_one(self.0.pool())
            .await
    }
}
