//! Files as use cases see them: an incoming file is checked (sniffed,
//! digested, thumbnailed) into a [`PreparedFile`] without touching storage,
//! then its blobs are stored (sealed) and its upload recorded as an event; a
//! failure after the blobs were written removes them again.

use domain::file::{FileCommand, FileInfo, StoredFile};
use domain::ids::{FileId, PatientId, UserId};
use domain::user::Role;
use projections::records::FileRow;
use sha2::{Digest, Sha256};

use crate::access_log::ReadOrigin;
use crate::app::error::AppError;
use crate::auth::Principal;
use crate::files::{check_content, thumbnail, FileError, FileKind};
use crate::policy::can_see_patient;
use crate::state::{AppState, RequestMeta};

/// Images decoded at once (for thumbnails), whatever the number of uploads in
/// flight: a decode may take up to [`crate::files::MAX_DECODE_ALLOC`], so this
/// bounds the server's memory, the rest wait their turn.
const CONCURRENT_DECODES: usize = 2;

fn decode_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_DECODES))
}

/// A file as it arrived: the form field it came in, its name, its bytes.
pub struct IncomingFile {
    pub field: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// A checked file, ready to store: nothing has been written yet.
pub struct PreparedFile {
    pub id: FileId,
    pub info: FileInfo,
    pub bytes: Vec<u8>,
    pub thumbnail: Option<Vec<u8>>,
}

fn file_error(field: &str, e: FileError) -> AppError {
    match e.status_hint() {
        413 => AppError::PayloadTooLarge,
        415 => AppError::UnsupportedMediaType(format!("{field}: {e}")),
        400 => AppError::field(field, e.to_string()),
        _ => AppError::internal(anyhow::anyhow!("{e}")),
    }
}

/// Sniffs, digests and thumbnails one file. No storage is touched; image
/// decoding runs on the blocking pool, off the request workers.
pub async fn prepare(kind: FileKind, file: IncomingFile, uploader: &Principal) -> Result<PreparedFile, AppError> {
    let sniffed = check_content(kind, &file.file_name, &file.bytes).map_err(|e| file_error(&file.field, e))?;
    let IncomingFile {
        field,
        file_name,
        bytes,
    } = file;
    let (bytes, thumb) = match kind {
        FileKind::Image => {
            let _slot = decode_slots()
                .acquire()
                .await
                .map_err(|e| AppError::internal(anyhow::anyhow!("decode slots: {e}")))?;
            let (bytes, thumb) = tokio::task::spawn_blocking(move || {
                let thumb = thumbnail(&bytes);
                (bytes, thumb)
            })
            .await
            .map_err(AppError::internal)?;
            (bytes, Some(thumb.map_err(|e| file_error(&field, e))?))
        }
        _ => (bytes, None),
    };
    let file = IncomingFile {
        field,
        file_name,
        bytes,
    };
    let id = FileId::new();
    let storage_key = format!("files/{id}.{}", sniffed.extension);
    let info = FileInfo {
        kind: kind.as_str().to_string(),
        original_name: file.file_name.chars().take(255).collect(),
        content_type: sniffed.mime.to_string(),
        size: file.bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&file.bytes)),
        thumbnail_key: thumb.as_ref().map(|_| format!("thumbnails/{id}.jpg")),
        storage_key,
        uploaded_by: uploader.user_id,
    };
    Ok(PreparedFile {
        id,
        info,
        bytes: file.bytes,
        thumbnail: thumb,
    })
}

/// Writes the blobs of every prepared file; if one fails, removes those
/// already written, so a failed request leaves no file behind.
pub async fn store(state: &AppState, files: &mut [PreparedFile]) -> Result<(), AppError> {
    let mut written: Vec<String> = Vec::new();
    for f in files.iter_mut() {
        let mut parts = vec![(f.info.storage_key.clone(), std::mem::take(&mut f.bytes))];
        if let (Some(key), Some(thumb)) = (&f.info.thumbnail_key, f.thumbnail.take()) {
            parts.push((key.clone(), thumb));
        }
        let subject = f.id.to_string();
        for (key, bytes) in parts {
            let sealed = state.store.privacy().seal_bytes(&subject, &key, &bytes).await;
            let stored = match sealed {
                Ok(sealed) => state.blobs.put(&key, sealed).await.map_err(|e| anyhow::anyhow!("{e}")),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = stored {
                discard(state, &written).await;
                return Err(AppError::internal(anyhow::anyhow!("storing {key}: {e}")));
            }
            written.push(key);
        }
    }
    Ok(())
}

/// Best-effort removal of stored blobs (after a later step failed).
pub async fn discard(state: &AppState, keys: &[String]) {
    for key in keys {
        if let Err(e) = state.blobs.delete(key).await {
            tracing::warn!(error = %e, "could not remove an orphaned blob");
        }
    }
}

pub fn blob_keys(files: &[PreparedFile]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| std::iter::once(f.info.storage_key.clone()).chain(f.info.thumbnail_key.clone()))
        .collect()
}

/// Records the upload events (after the blobs are stored).
pub async fn register(
    state: &AppState,
    files: &[PreparedFile],
    p: &Principal,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    for f in files {
        let mut ctx = meta.context(Some(p), "UploadFile");
        ctx.expected_version = None;
        state
            .execute::<StoredFile>(&f.id.to_string(), FileCommand::Register(f.info.clone()), ctx)
            .await?;
    }
    Ok(())
}

/// Uploads one file: checked, stored, recorded; nothing is left behind when
/// a step fails.
pub async fn upload(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    kind: FileKind,
    file: IncomingFile,
) -> Result<PreparedFile, AppError> {
    let mut prepared = vec![prepare(kind, file, p).await?];
    store(state, &mut prepared).await?;
    if let Err(e) = register(state, &prepared, p, meta).await {
        discard(state, &blob_keys(&prepared)).await;
        return Err(e);
    }
    Ok(prepared.remove(0))
}

/// The patients whose records include this file (their data, for the access
/// log), when the caller may read it: its uploader, an admin, or someone who
/// may see one of those patients. `None`: not for this caller.
async fn readable(
    state: &AppState,
    p: &Principal,
    file_id: FileId,
    uploaded_by: UserId,
) -> Result<Option<Vec<PatientId>>, AppError> {
    let patients = state.read().await.files().patients(file_id).await?;
    if uploaded_by == p.user_id || p.is(Role::Admin) {
        return Ok(Some(patients));
    }
    for &patient in &patients {
        if can_see_patient(state, p, patient).await? {
            return Ok(Some(patients));
        }
    }
    Ok(None)
}

/// A file's bytes (or its thumbnail's), to a caller who may read it: its
/// uploader, an admin, or whoever may see one of the patients it is about;
/// decrypted, the read logged.
pub async fn read(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    fid: FileId,
    thumb: bool,
) -> Result<FileContent, AppError> {
    let file = state
        .read()
        .await
        .files()
        .get(fid)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    let Some(patients) = readable(state, p, file.id, file.uploaded_by).await? else {
        return Err(AppError::NotFound("file"));
    };
    let (key, content_type) = if thumb {
        (
            file.thumbnail_key.clone().ok_or(AppError::NotFound("thumbnail"))?,
            "image/jpeg".to_string(),
        )
    } else {
        (file.storage_key.clone(), file.content_type.clone())
    };
    let stored = state
        .blobs
        .get(&key)
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?
        .ok_or(AppError::NotFound("file"))?;
    let bytes = state
        .store
        .privacy()
        .open_bytes(&file.id.to_string(), &key, stored)
        .await
        .map_err(AppError::internal)?
        .ok_or(AppError::NotFound("file"))?;
    state.access.patients(p, origin, &patients).await?;
    Ok(FileContent {
        file,
        key,
        content_type,
        bytes,
    })
}

/// What [`read`] answers.
pub struct FileContent {
    pub file: FileRow,
    /// The stored blob's key (its extension names the format).
    pub key: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}
