//! File handling for patient files: photos, audio notes, signatures and
//! documents uploaded by carers.
//!
//! Three concerns live here so that handlers stay thin:
//! - [`check_content`]: an extension whitelist per [`FileKind`] plus content
//!   sniffing, so a renamed executable or a mislabelled file never gets stored
//!   or served back with a trusted content type.
//! - [`thumbnail`]: a fixed-size JPEG preview for image lists, decoded under
//!   size limits so a crafted image cannot exhaust memory.
//! - [`BlobStore`]: one storage interface over a local directory (development,
//!   single-node installs) and S3-compatible object storage (production, MinIO).
//!
//! Thumbnailing is CPU-bound: call [`thumbnail`] from `spawn_blocking`.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};

/// Largest accepted upload, in bytes. Handlers should stop reading the body
/// past this; [`check_content`] enforces it again as a last line of defence.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Width and height of every thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 300;

/// Largest image width or height [`thumbnail`] agrees to decode.
pub const MAX_IMAGE_DIMENSION: u32 = 12_000;

/// Largest image, in pixels, [`thumbnail`] agrees to decode (40 Mpx: more
/// than any phone camera takes; a 9000×9000 "bomb" of a few hundred KB is 81).
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// Largest decoder allocation [`thumbnail`] allows (256 MiB), the guard
/// against decompression bombs: small files that decode to huge bitmaps.
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// JPEG quality of thumbnails: small files, still fine for a preview.
const THUMBNAIL_QUALITY: u8 = 80;

/// What a file is for, chosen by the client at upload time. It decides which
/// extensions and contents are accepted; signatures are images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Voice notes: mp3, m4a, aac, wav, amr, ogg.
    Audio,
    /// Photos and signatures: jpg/jpeg, png, gif, webp.
    Image,
    /// Documents: pdf.
    Document,
}

impl FileKind {
    /// Parses the wire name (`audio`, `image`, `document`), e.g. from a
    /// multipart field or query parameter. The error is a user-facing message.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "audio" => Ok(FileKind::Audio),
            "image" => Ok(FileKind::Image),
            "document" => Ok(FileKind::Document),
            _ => Err("应为audio、image或document".to_string()),
        }
    }

    /// The wire name, the same as the serde form; for storage keys and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Audio => "audio",
            FileKind::Image => "image",
            FileKind::Document => "document",
        }
    }

    /// The lower-case extensions accepted for this kind, for error messages
    /// and API documentation.
    pub fn allowed_extensions(self) -> Vec<&'static str> {
        FORMATS
            .iter()
            .filter(|f| f.kind == self)
            .flat_map(|f| f.extensions.iter().copied())
            .collect()
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type a file was verified to be: the content type to store and serve
/// it with, and the canonical extension to name it with. Both come from our
/// whitelist, never from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SniffedType {
    /// MIME type to send in `Content-Type` when serving the file.
    pub mime: &'static str,
    /// Canonical lower-case extension without the dot (`jpg` for `.jpeg` too).
    pub extension: &'static str,
}

/// Why a file was refused or could not be stored. Messages are English, for
/// logs; the API layer turns them into the Chinese envelope by
/// [`FileError::status_hint`].
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The extension is not on the whitelist of the chosen kind (415).
    #[error("file extension not allowed: {ext:?}")]
    ExtensionNotAllowed { ext: String },
    /// The bytes are not what the extension claims, or cannot be decoded (415).
    #[error("file content does not match: expected {expected}, found {found}")]
    ContentMismatch { expected: String, found: String },
    /// The upload has no bytes (400).
    #[error("file is empty")]
    Empty,
    /// The file, or the image it decodes to, is over the limits (413).
    #[error("file too large")]
    TooLarge,
    /// The blob store failed; details are for logs only (500).
    #[error("storage error: {0}")]
    Storage(String),
}

impl FileError {
    /// The HTTP status this error should become, so the API layer maps it in
    /// one place without matching every variant.
    pub fn status_hint(&self) -> u16 {
        match self {
            FileError::ExtensionNotAllowed { .. } | FileError::ContentMismatch { .. } => 415,
            FileError::TooLarge => 413,
            FileError::Empty => 400,
            FileError::Storage(_) => 500,
        }
    }
}

/// One accepted format: the extensions a client may use, the MIME types
/// `infer` reports for such content, and what we serve it as.
struct Format {
    kind: FileKind,
    extensions: &'static [&'static str],
    sniffed: &'static [&'static str],
    mime: &'static str,
    extension: &'static str,
}

/// The whitelist. `sniffed` lists the strings `infer` 0.22 actually returns.
const FORMATS: &[Format] = &[
    Format {
        kind: FileKind::Image,
        extensions: &["jpg", "jpeg"],
        sniffed: &["image/jpeg"],
        mime: "image/jpeg",
        extension: "jpg",
    },
    Format {
        kind: FileKind::Image,
        extensions: &["png"],
        sniffed: &["image/png"],
        mime: "image/png",
        extension: "png",
    },
    Format {
        kind: FileKind::Image,
        extensions: &["gif"],
        sniffed: &["image/gif"],
        mime: "image/gif",
        extension: "gif",
    },
    Format {
        kind: FileKind::Image,
        extensions: &["webp"],
        sniffed: &["image/webp"],
        mime: "image/webp",
        extension: "webp",
    },
    Format {
        kind: FileKind::Audio,
        extensions: &["mp3"],
        sniffed: &["audio/mpeg"],
        mime: "audio/mpeg",
        extension: "mp3",
    },
    // `infer` says audio/m4a only for the `M4A ` brand; phones often write
    // m4a with an isom/mp42 brand, which it reports as video/mp4. Served as
    // the registered audio/mp4 either way.
    Format {
        kind: FileKind::Audio,
        extensions: &["m4a"],
        sniffed: &["audio/m4a", "video/mp4"],
        mime: "audio/mp4",
        extension: "m4a",
    },
    Format {
        kind: FileKind::Audio,
        extensions: &["aac"],
        sniffed: &["audio/aac"],
        mime: "audio/aac",
        extension: "aac",
    },
    Format {
        kind: FileKind::Audio,
        extensions: &["wav"],
        sniffed: &["audio/x-wav"],
        mime: "audio/x-wav",
        extension: "wav",
    },
    Format {
        kind: FileKind::Audio,
        extensions: &["amr"],
        sniffed: &["audio/amr"],
        mime: "audio/amr",
        extension: "amr",
    },
    // Ogg Opus is reported as audio/opus; it is still an Ogg container.
    Format {
        kind: FileKind::Audio,
        extensions: &["ogg"],
        sniffed: &["audio/ogg", "audio/opus"],
        mime: "audio/ogg",
        extension: "ogg",
    },
    Format {
        kind: FileKind::Document,
        extensions: &["pdf"],
        sniffed: &["application/pdf"],
        mime: "application/pdf",
        extension: "pdf",
    },
];

/// Decides whether an upload may be stored as `kind`: the extension of
/// `file_name` must be whitelisted for the kind, and the sniffed content must
/// be of that same format (a PNG renamed `.jpg` is refused, as is text).
/// Returns the type to store and serve the file as.
pub fn check_content(kind: FileKind, file_name: &str, bytes: &[u8]) -> Result<SniffedType, FileError> {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = FORMATS
        .iter()
        .find(|f| f.kind == kind && f.extensions.contains(&ext.as_str()))
        .ok_or(FileError::ExtensionNotAllowed { ext })?;
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let found = infer::get(bytes).map(|t| t.mime_type());
    match found {
        Some(mime) if format.sniffed.contains(&mime) => Ok(SniffedType {
            mime: format.mime,
            extension: format.extension,
        }),
        _ => Err(FileError::ContentMismatch {
            expected: format.mime.to_string(),
            found: found.unwrap_or("unknown").to_string(),
        }),
    }
}

/// Makes the preview shown in lists: a [`THUMBNAIL_SIZE`]-square JPEG, the
/// centre of the image scaled to cover the square, upright per EXIF
/// orientation. Refuses images over [`MAX_IMAGE_DIMENSION`] a side or
/// [`MAX_IMAGE_PIXELS`] in all (before decoding a pixel), or needing more
/// than [`MAX_DECODE_ALLOC`] to decode ([`FileError::TooLarge`]), and bytes
/// that are not a JPEG, PNG, GIF or WebP ([`FileError::ContentMismatch`]).
pub fn thumbnail(bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_DIMENSION);
    limits.max_image_height = Some(MAX_IMAGE_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);

    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(ImageError::IoError(e)))?;
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // `into_decoder` does not count the output buffer against the limits
    // (`ImageReader::decode` does), so check it here.
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_DIMENSION
        || height > MAX_IMAGE_DIMENSION
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
        || decoder.total_bytes() > MAX_DECODE_ALLOC
    {
        return Err(FileError::TooLarge);
    }
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);

    // JPEG has no alpha channel: flatten to RGB before encoding.
    let thumb = img
        .resize_to_fill(THUMBNAIL_SIZE, THUMBNAIL_SIZE, FilterType::Triangle)
        .into_rgb8();
    let mut out = Vec::new();
    thumb
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, THUMBNAIL_QUALITY))
        .map_err(|e| FileError::Storage(format!("encoding thumbnail: {e}")))?;
    Ok(out)
}

/// Maps a decoding failure: limit breaches are the client's oversized image,
/// everything else means the bytes are not a usable image.
fn decode_error(e: ImageError) -> FileError {
    match e {
        ImageError::Limits(_) => FileError::TooLarge,
        other => FileError::ContentMismatch {
            expected: "image".to_string(),
            found: other.to_string(),
        },
    }
}

/// Connection settings for S3-compatible object storage (AWS S3, MinIO, ...).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Bucket holding the files; it must exist.
    pub bucket: String,
    /// Endpoint URL of a non-AWS service, e.g. `http://127.0.0.1:9000` for
    /// MinIO. `None` means AWS itself.
    pub endpoint: Option<String>,
    /// Region; `None` means `us-east-1`, which MinIO accepts by default.
    pub region: Option<String>,
    /// Access key; `None` falls back to the instance's AWS credentials.
    pub access_key_id: Option<String>,
    /// Secret for `access_key_id`.
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` endpoints (local MinIO); keep off in production.
    pub allow_http: bool,
}

/// Where file bytes live. One type over local disk and S3 so handlers and
/// tests do not care which backend the deployment configured.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
}

impl BlobStore {
    /// Stores files under `dir`, creating it if needed. For development,
    /// tests and single-node installs.
    pub fn local(dir: &Path) -> Result<Self, FileError> {
        std::fs::create_dir_all(dir).map_err(|e| FileError::Storage(format!("creating {}: {e}", dir.display())))?;
        // Patients' files (encrypted, still private): the owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| FileError::Storage(format!("restricting {}: {e}", dir.display())))?;
        }
        let store = LocalFileSystem::new_with_prefix(dir).map_err(storage_error)?;
        Ok(BlobStore {
            inner: Arc::new(store),
            backend: "local",
        })
    }

    /// Stores files in an S3 bucket. Requests use path-style URLs
    /// (`endpoint/bucket/key`), which S3-compatible services like MinIO need.
    /// Does not contact the service: a wrong bucket or key shows up on first use.
    pub fn s3(settings: &S3Settings) -> Result<Self, FileError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
            .with_allow_http(settings.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(storage_error)?;
        Ok(BlobStore {
            inner: Arc::new(store),
            backend: "s3",
        })
    }

    /// Which backend this is (`local` or `s3`), for startup logs.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Writes `bytes` under `key` (e.g. `patients/<id>/<uuid>.jpg`),
    /// replacing any previous object. Keys are made by the server; one with
    /// empty, `.` or `..` segments is refused as a storage error.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), FileError> {
        let path = object_path(key)?;
        self.inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    /// Reads the object under `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, FileError> {
        let path = object_path(key)?;
        let result = match self.inner.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        let bytes = result.bytes().await.map_err(storage_error)?;
        Ok(Some(bytes.to_vec()))
    }

    /// Removes the object under `key`; removing a missing object succeeds, so
    /// retries and clean-ups are idempotent.
    pub async fn delete(&self, key: &str) -> Result<(), FileError> {
        let path = object_path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

/// Parses a key strictly, refusing traversal (`..`) and empty segments.
fn object_path(key: &str) -> Result<ObjectPath, FileError> {
    ObjectPath::parse(key).map_err(|e| FileError::Storage(format!("invalid key {key:?}: {e}")))
}

fn storage_error(e: object_store::Error) -> FileError {
    FileError::Storage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};

    fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode test image");
        out.into_inner()
    }

    fn png() -> Vec<u8> {
        encoded(ImageFormat::Png, 640, 480)
    }

    fn jpeg() -> Vec<u8> {
        encoded(ImageFormat::Jpeg, 480, 640)
    }

    fn wav() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&36u32.to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&1u16.to_le_bytes()); // mono
        b.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
        b.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
        b.extend_from_slice(&2u16.to_le_bytes()); // block align
        b.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        b.extend_from_slice(b"data");
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    #[test]
    fn kind_parses_and_round_trips() {
        for kind in [FileKind::Audio, FileKind::Image, FileKind::Document] {
            assert_eq!(FileKind::parse(kind.as_str()), Ok(kind));
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(FileKind::parse("video"), Err("应为audio、image或document".to_string()));
    }

    #[test]
    fn real_images_pass_with_their_extension() {
        let t = check_content(FileKind::Image, "photo.png", &png()).expect("png");
        assert_eq!(
            t,
            SniffedType {
                mime: "image/png",
                extension: "png"
            }
        );
        let t = check_content(FileKind::Image, "IMG_0001.JPEG", &jpeg()).expect("jpeg");
        assert_eq!(
            t,
            SniffedType {
                mime: "image/jpeg",
                extension: "jpg"
            }
        );
    }

    #[test]
    fn png_named_jpg_is_refused() {
        let err = check_content(FileKind::Image, "photo.jpg", &png()).unwrap_err();
        match &err {
            FileError::ContentMismatch { expected, found } => {
                assert_eq!(expected, "image/jpeg");
                assert_eq!(found, "image/png");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.status_hint(), 415);
    }

    #[test]
    fn text_named_jpg_is_refused() {
        let err = check_content(FileKind::Image, "photo.jpg", b"hello, not an image").unwrap_err();
        assert!(matches!(err, FileError::ContentMismatch { ref found, .. } if found == "unknown"));
    }

    #[test]
    fn disallowed_extensions_are_refused() {
        let err = check_content(FileKind::Document, "setup.exe", b"MZ\x90\x00").unwrap_err();
        assert!(matches!(err, FileError::ExtensionNotAllowed { ref ext } if ext == "exe"));
        assert_eq!(err.status_hint(), 415);
        // Allowed elsewhere is not allowed here: a PDF is not an image.
        let err = check_content(FileKind::Image, "scan.pdf", b"%PDF-1.4\n").unwrap_err();
        assert!(matches!(err, FileError::ExtensionNotAllowed { .. }));
        let err = check_content(FileKind::Image, "no_extension", &png()).unwrap_err();
        assert!(matches!(err, FileError::ExtensionNotAllowed { ref ext } if ext.is_empty()));
    }

    #[test]
    fn empty_and_oversized_uploads_are_refused() {
        let err = check_content(FileKind::Image, "a.png", &[]).unwrap_err();
        assert!(matches!(err, FileError::Empty));
        assert_eq!(err.status_hint(), 400);
        let mut big = png();
        big.resize(MAX_FILE_BYTES + 1, 0);
        let err = check_content(FileKind::Image, "a.png", &big).unwrap_err();
        assert!(matches!(err, FileError::TooLarge));
        assert_eq!(err.status_hint(), 413);
    }

    #[test]
    fn pdf_passes_as_document() {
        let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        let t = check_content(FileKind::Document, "report.PDF", pdf).expect("pdf");
        assert_eq!(
            t,
            SniffedType {
                mime: "application/pdf",
                extension: "pdf"
            }
        );
    }

    #[test]
    fn wav_passes_as_audio() {
        let t = check_content(FileKind::Audio, "note.wav", &wav()).expect("wav");
        assert_eq!(
            t,
            SniffedType {
                mime: "audio/x-wav",
                extension: "wav"
            }
        );
        // The same bytes are not an mp3.
        let err = check_content(FileKind::Audio, "note.mp3", &wav()).unwrap_err();
        assert!(matches!(err, FileError::ContentMismatch { .. }));
    }

    #[test]
    fn m4a_in_an_mp4_container_passes() {
        let mut m4a = vec![0, 0, 0, 0x18];
        m4a.extend_from_slice(b"ftypmp42\0\0\0\0mp42isom");
        let t = check_content(FileKind::Audio, "voice.m4a", &m4a).expect("m4a");
        assert_eq!(
            t,
            SniffedType {
                mime: "audio/mp4",
                extension: "m4a"
            }
        );
    }

    #[test]
    fn thumbnail_is_a_300_square_jpeg() {
        for source in [png(), jpeg()] {
            let thumb = thumbnail(&source).expect("thumbnail");
            assert_eq!(infer::get(&thumb).map(|t| t.mime_type()), Some("image/jpeg"));
            let decoded = image::load_from_memory(&thumb).expect("decode thumbnail");
            assert_eq!((decoded.width(), decoded.height()), (300, 300));
        }
    }

    #[test]
    fn thumbnail_refuses_non_images_and_bombs() {
        let err = thumbnail(b"%PDF-1.4\n").unwrap_err();
        assert!(matches!(err, FileError::ContentMismatch { .. }));
        // Small files whose valid PNG header claims a huge bitmap: over the
        // dimension limit, then within it but over the allocation limit, then
        // within both but over the pixel limit (9000×9000 RGB is 243 MB).
        for (w, h) in [(20_000, 20_000), (10_000, 10_000), (9_000, 9_000), (8_000, 5_001)] {
            let err = thumbnail(&png_claiming(w, h)).unwrap_err();
            assert!(matches!(err, FileError::TooLarge), "{w}x{h}: {err:?}");
        }
    }

    /// A real PNG whose IHDR is rewritten to claim `width`x`height`, with a
    /// correct CRC so the decoder reads the header instead of failing early.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png();
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        // IHDR chunk type and data are bytes 12..29; its CRC follows.
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[tokio::test]
    async fn local_store_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::local(&dir.path().join("blobs")).expect("local store");
        assert_eq!(store.backend(), "local");
        let key = "patients/p1/photo.png";
        assert_eq!(store.get(key).await.expect("get missing"), None);
        store.put(key, b"bytes".to_vec()).await.expect("put");
        assert_eq!(store.get(key).await.expect("get"), Some(b"bytes".to_vec()));
        store.delete(key).await.expect("delete");
        assert_eq!(store.get(key).await.expect("get deleted"), None);
        store.delete(key).await.expect("delete missing is ok");
        assert!(matches!(
            store.put("../escape", vec![1]).await,
            Err(FileError::Storage(_))
        ));
    }

    #[test]
    fn s3_store_builds_for_minio_without_contacting_it() {
        let store = BlobStore::s3(&S3Settings {
            bucket: "carelog".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key_id: Some("minio".into()),
            secret_access_key: Some("minio-secret".into()),
            allow_http: true,
        })
        .expect("s3 store");
        assert_eq!(store.backend(), "s3");
    }
}
