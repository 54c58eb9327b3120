//! What an upload is: the extension whitelist per [`FileKind`] and content
//! sniffing, so a renamed executable or a mislabelled file never gets stored
//! or served back with a trusted content type.

use serde::{Deserialize, Serialize};

use super::FileError;

/// Largest accepted upload, in bytes. Handlers should stop reading the body
/// past this; [`check_content`] enforces it again as a last line of defence.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::samples::{jpeg, png};

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
}
