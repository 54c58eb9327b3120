//! File upload and download. Bytes are checked (extension whitelist and
//! sniffed content), digested and thumbnailed before anything is stored; a
//! file follows the patient whose record it is attached to: only people who may
//! see that patient (or its uploader, before it is attached) can download it.

use actix_multipart::Multipart;
use actix_web::{web, HttpResponse};
use domain::ids::FileId;
use domain::user::Role;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ApiResult};
use crate::api::path_id;
use crate::app;
use crate::app::error::AppError;
use crate::app::files::IncomingFile;
use crate::auth::Principal;
use crate::files::{FileKind, MAX_FILE_BYTES};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/files/upload", upload)
        .get("/files/{id}", download)
        .get("/files/{id}/thumbnail", download_thumbnail);
}

/// Text fields of a multipart form are small; anything larger is refused.
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// What one multipart form may hold. Every form is read against limits: the
/// whole body (`CARELOG_MAX_FORM_BYTES`), each file (16 MiB), the number of
/// parts and the number of files; past any of them the read stops at once
/// with 413, before anything is decoded or stored.
#[derive(Debug, Clone, Copy)]
pub struct FormLimits {
    pub max_bytes: usize,
    pub max_parts: usize,
    pub max_files: usize,
}

impl FormLimits {
    /// `POST /files/upload`: one file and its type.
    pub fn upload(state: &AppState) -> Self {
        FormLimits {
            max_bytes: state
                .settings
                .limits
                .max_form_bytes
                .min(MAX_FILE_BYTES + MAX_TEXT_FIELD),
            max_parts: 4,
            max_files: 1,
        }
    }

    /// `POST /health-records`: the record's fields and up to 9 photos, an
    /// audio note and a signature.
    pub fn record(state: &AppState) -> Self {
        FormLimits {
            max_bytes: state.settings.limits.max_form_bytes,
            max_parts: 32,
            max_files: 11,
        }
    }
}

/// A multipart form read into memory: text fields and files (each bounded).
#[derive(Default)]
pub struct Form {
    pub texts: Vec<(String, String)>,
    pub files: Vec<IncomingFile>,
}

impl Form {
    pub fn text(&self, name: &str) -> Option<String> {
        self.texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Reads the whole form within `limits`; a file over 16 MiB, a form over
    /// its size, or too many parts or files stop the read at once (413).
    pub async fn read(mut payload: Multipart, limits: FormLimits) -> Result<Form, AppError> {
        let mut form = Form::default();
        let mut total = 0usize;
        while let Some(field) = payload.next().await {
            let mut field = field.map_err(|e| AppError::field("body", format!("multipart格式错误：{e}")))?;
            if form.texts.len() + form.files.len() >= limits.max_parts {
                return Err(AppError::PayloadTooLarge);
            }
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(str::to_string);
            if file_name.is_some() && form.files.len() >= limits.max_files {
                return Err(AppError::PayloadTooLarge);
            }
            let limit = if file_name.is_some() {
                MAX_FILE_BYTES
            } else {
                MAX_TEXT_FIELD
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| AppError::field(&name, format!("读取失败：{e}")))?;
                if bytes.len() + chunk.len() > limit || total + chunk.len() > limits.max_bytes {
                    return Err(AppError::PayloadTooLarge);
                }
                total += chunk.len();
                bytes.extend_from_slice(&chunk);
            }
            match file_name {
                Some(file_name) => form.files.push(IncomingFile {
                    field: name,
                    file_name,
                    bytes,
                }),
                None => {
                    let text = String::from_utf8(bytes).map_err(|_| AppError::field(&name, "应为UTF-8文本"))?;
                    form.texts.push((name, text));
                }
            }
        }
        Ok(form)
    }
}

pub fn file_json(id: FileId, has_thumbnail: bool) -> serde_json::Value {
    json!({
        "file_id": id,
        "file_url": format!("/api/v1/files/{id}"),
        "thumbnail_url": has_thumbnail.then(|| format!("/api/v1/files/{id}/thumbnail")),
    })
}

/// A file's bytes in a form or a download (the schema only: a binary string).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// The form of `POST /files/upload` (the schema only; the handler reads the
/// multipart stream itself).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: its extension and its bytes must match `type` (images: JPEG,
    /// PNG, GIF, WebP; audio: MP3, M4A, AAC, WAV, AMR, OGG; documents: PDF); at
    /// most 16 MiB.
    file: FileBytes,
    #[schema(pattern = "^(audio|image|document)$")]
    r#type: String,
}

/// What an upload answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedFile {
    pub file_id: String,
    /// Where to download it (`GET`, with a token).
    pub file_url: String,
    /// Images only: their 300×300 JPEG thumbnail.
    pub thumbnail_url: Option<String>,
    /// The sniffed content type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
}

#[utoipa::path(post, path = "/api/v1/files/upload", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = crate::api::Envelope<UploadedFile>),
        (status = 400, description = "`file` or `type` missing or malformed, or a broken multipart form", body = crate::api::ErrorBody),
        (status = 413, description = "the file is over 16 MiB, or the form over its limits", body = crate::api::ErrorBody),
        (status = 415, description = "the extension or the sniffed content does not match `type`", body = crate::api::ErrorBody)))]
pub async fn upload(state: web::Data<AppState>, p: Principal, meta: RequestMeta, payload: Multipart) -> ApiResult {
    p.require(&[Role::Recorder, Role::Admin, Role::Doctor])?;
    let mut form = Form::read(payload, FormLimits::upload(&state)).await?;
    let kind = match form.text("type") {
        None => return Err(AppError::field("type", "必填").into()),
        Some(t) => FileKind::parse(&t).map_err(|e| AppError::field("type", e))?,
    };
    let Some(pos) = form.files.iter().position(|f| f.field == "file") else {
        return Err(AppError::field("file", "必填").into());
    };
    let incoming = form.files.swap_remove(pos);
    let f = &app::files::upload(&state, &p, &meta, kind, incoming).await?;
    let id = f.id;
    Ok(created(UploadedFile {
        file_id: id.to_string(),
        file_url: format!("/api/v1/files/{id}"),
        thumbnail_url: f
            .info
            .thumbnail_key
            .is_some()
            .then(|| format!("/api/v1/files/{id}/thumbnail")),
        content_type: f.info.content_type.clone(),
        size: f.info.size,
    }))
}

async fn serve(state: &AppState, p: &Principal, origin: &ReadOrigin, id: &str, thumb: bool) -> ApiResult {
    let fid: FileId = path_id(id, "file")?;
    let app::files::FileContent {
        file,
        key,
        content_type,
        bytes,
    } = app::files::read(state, p, origin, fid, thumb).await?;
    // Only images are shown inline; anything else (a PDF) is downloaded, and
    // never runs as a page of ours (sandbox: no scripts, no same origin).
    let extension = key.rsplit('.').next().unwrap_or("bin");
    let disposition = if content_type.starts_with("image/") {
        "inline".to_string()
    } else {
        format!("attachment; filename=\"{}.{extension}\"", file.id)
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "private, no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .insert_header(("Content-Disposition", disposition))
        .body(bytes))
}

#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "file id")),
    responses((status = 200, description = "the file's bytes, in the content type sniffed at upload; images inline, anything else as an attachment",
            content((FileBytes = "image/jpeg"), (FileBytes = "image/png"), (FileBytes = "image/gif"), (FileBytes = "image/webp"),
                (FileBytes = "audio/mpeg"), (FileBytes = "audio/mp4"), (FileBytes = "audio/aac"), (FileBytes = "audio/x-wav"),
                (FileBytes = "audio/amr"), (FileBytes = "audio/ogg"), (FileBytes = "application/pdf"))),
        (status = 404, description = "no such file, or not the caller's to read", body = crate::api::ErrorBody)))]
pub async fn download(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    serve(&state, &p, &origin, &id, false).await
}

#[utoipa::path(get, path = "/api/v1/files/{id}/thumbnail", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "file id")),
    responses((status = 200, description = "a 300×300 JPEG", content((FileBytes = "image/jpeg"))),
        (status = 404, description = "no such file, not an image, or not the caller's to read", body = crate::api::ErrorBody)))]
pub async fn download_thumbnail(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    serve(&state, &p, &origin, &id, true).await
}
