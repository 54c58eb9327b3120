//! Previews for image lists: a fixed-size JPEG, decoded under size limits so
//! a crafted image cannot exhaust memory. CPU-bound: call [`thumbnail`] from
//! `spawn_blocking`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};

use super::FileError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::samples::{jpeg, png};

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
}
