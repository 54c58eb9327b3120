//! File handling for patient files: photos, audio notes, signatures and
//! documents uploaded by carers. Three concerns, one module each, so that
//! handlers stay thin:
//! - `sniff`: [`check_content`], an extension whitelist per [`FileKind`] plus
//!   content sniffing, so a renamed executable or a mislabelled file never
//!   gets stored or served back with a trusted content type.
//! - `thumbnail`: [`thumbnail()`], a fixed-size JPEG preview for image lists,
//!   decoded under size limits so a crafted image cannot exhaust memory.
//! - `storage`: [`BlobStore`], one storage interface over a local directory
//!   and S3-compatible object storage.
//!
//! [`FileError`] is shared by the three: the API maps it in one place.

mod sniff;
mod storage;
mod thumbnail;

pub use sniff::{check_content, FileKind, SniffedType, MAX_FILE_BYTES};
pub use storage::BlobStore;
pub use thumbnail::{thumbnail, MAX_DECODE_ALLOC, MAX_IMAGE_DIMENSION, MAX_IMAGE_PIXELS, THUMBNAIL_SIZE};

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

/// Sample files for the tests of the three modules.
#[cfg(test)]
mod samples {
    use std::io::Cursor;

    use image::{ImageFormat, Rgb, RgbImage};

    fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode test image");
        out.into_inner()
    }

    pub fn png() -> Vec<u8> {
        encoded(ImageFormat::Png, 640, 480)
    }

    pub fn jpeg() -> Vec<u8> {
        encoded(ImageFormat::Jpeg, 480, 640)
    }
}
