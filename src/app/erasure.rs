//! `POST /patients/{id}/erase`: erasure of a patient's personal data on
//! request (PIPL), by destroying the key that encrypts them (crypto-shredding).
//!
//! Steps, each safe to repeat (a second POST completes an interrupted one):
//! 1. the patient's key is destroyed, so every personal field in every
//!    earlier event reads as erased from now on, and nothing new can be sealed;
//! 2. `PatientErased` is recorded (who, why, when: the erasure is audited);
//! 3. the files attached to the patient's records are deleted from storage
//!    (and their names' keys destroyed);
//! 4. if no patient of the family keeps their data, the household's own
//!    fields (name, address, phones) are erased the same way;
//! 5. stored idempotent responses that mention the patient are dropped;
//! 6. the read models blank the fields (projectors apply `PatientErased`).

use domain::family::{Family, FamilyCommand, FamilyError};
use domain::ids::PatientId;
use domain::patient::{Patient, PatientCommand};
use domain::user::Role;
use domain::DomainError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::path_id;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};
use crate::store::{CommandContext, CommandError};

#[derive(Debug, Deserialize, ToSchema)]
pub struct EraseInput {
    /// Why (e.g. the request's reference). Kept in clear in the audit trail:
    /// must not itself contain personal data.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub reason: Option<String>,
}

/// What an erasure answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub patient_id: String,
    /// Always true.
    pub erased: bool,
    /// Files of the patient's records deleted from storage.
    pub files_deleted: usize,
    /// Whether the household's own fields were erased too (no patient of it keeps data).
    pub family_erased: bool,
    /// The patient's version after `PatientErased`; null when it was already recorded.
    pub version: Option<i64>,
}

/// Admin `p` erases patient `id` (see the module docs); repeating it completes
/// an interrupted erasure.
pub async fn erase(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &EraseInput,
) -> Result<Erased, AppError> {
    p.require(&[Role::Admin])?;
    let pid: PatientId = path_id(id, "patient")?;
    let patient = pid.to_string();
    let reason = input.reason.clone().unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(AppError::field("reason", "必填：请说明删除依据"));
    }
    let Some((current, _)) = state.store.load::<Patient>(&patient).await? else {
        return Err(AppError::NotFound("patient"));
    };
    let ctx = meta.context(Some(p), "ErasePatient");
    // 1. The key goes first: from this moment nothing more can be sealed for
    //    the patient, nor anything read, on any instance (keys are not cached).
    state
        .store
        .privacy()
        .erase(&patient)
        .await
        .map_err(AppError::internal)?;
    // 2. The audited event (a no-op when a previous attempt recorded it).
    let mut version = None;
    if !current.erased {
        let command = PatientCommand::Erase {
            reason: reason.clone(),
            erased_by: p.user_id,
        };
        let committed = state.store.execute::<Patient>(&patient, command, &ctx).await?;
        version = Some(committed.version);
    }
    // 3-7, also done by the erasure reactor should this process die now.
    let done = complete(state, &patient, &reason, &ctx).await?;
    Ok(Erased {
        patient_id: patient,
        erased: true,
        files_deleted: done.files_deleted,
        family_erased: done.family_erased,
        version,
    })
}

/// What completing an erasure did.
pub struct Completion {
    pub files_deleted: usize,
    pub family_erased: bool,
}

/// Steps 3 to 7 for a patient whose `PatientErased` is recorded. Idempotent.
pub async fn complete(
    state: &AppState,
    patient: &str,
    reason: &str,
    ctx: &CommandContext,
) -> Result<Completion, AppError> {
    // The key again (the erasure reactor's path), then the read models must show
    // the erasure: the files and the household are found there.
    state.store.privacy().erase(patient).await.map_err(AppError::internal)?;
    if !state.waiter.wait_for(state.store.head().await?).await {
        return Err(AppError::Unavailable);
    }
    // 3. Files (the read model still lists them: only their names were blanked).
    let pid: Option<PatientId> = patient.parse().ok();
    let files = match pid {
        Some(id) => state.read().await.erasure().patient_files(id).await?,
        None => Vec::new(),
    };
    for f in &files {
        for key in std::iter::once(&f.storage_key).chain(f.thumbnail_key.as_ref()) {
            state.blobs.delete(key).await.map_err(AppError::internal)?;
        }
        // The file's name and contents were sealed under the file's own key.
        state
            .store
            .privacy()
            .erase(&f.id.to_string())
            .await
            .map_err(AppError::internal)?;
    }
    // 4. The household, once none of its patients keeps personal data (its
    //    own command: the caller's If-Match was about the patient).
    let ctx = &CommandContext {
        expected_version: None,
        ..ctx.clone()
    };
    let family = match pid {
        Some(id) => state.read().await.patients().family_of(id).await?,
        None => None,
    };
    let mut family_erased = false;
    if let Some(family) = family {
        if state.read().await.erasure().family_live_patients(family).await? == 0 {
            let family = family.to_string();
            let erase = FamilyCommand::Erase {
                reason: reason.to_string(),
            };
            let committed = match state.store.execute::<Family>(&family, erase, ctx).await {
                Ok(c) => c,
                Err(CommandError::Domain(DomainError::Family(FamilyError::NotFound))) => Default::default(),
                Err(e) => return Err(e.into()),
            };
            state.store.privacy().erase(&family).await.map_err(AppError::internal)?;
            // Nothing written when the erasure reactor got there first: wait for
            // its event to reach the read models all the same.
            let position = match committed.position {
                0 => state.store.head().await?,
                p => p,
            };
            if !state.waiter.wait_for(position).await {
                return Err(AppError::Unavailable);
            }
            family_erased = true;
        }
    }
    // 5. Stored responses of idempotent commands about the patient or family.
    let family = family.filter(|_| family_erased).map(|f| f.to_string());
    let subjects = std::iter::once(patient).chain(family.as_deref());
    for subject in subjects {
        crate::idempotency::forget_mentions(&state.store, subject).await?;
    }
    // 6. No old page images of the blanked rows in embedded SQLite logs.
    state.read().await.flush_erased().await?;
    tracing::info!(patient, files = files.len(), family_erased, "patient erasure completed");
    Ok(Completion {
        files_deleted: files.len(),
        family_erased,
    })
}
