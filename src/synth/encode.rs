//! Pixel data of one slice in the form its transfer syntax needs: native 16-bit words, or one encapsulated
//! fragment (RLE Lossless by `synth::rle`, JPEG-LS Lossless by CharLS through dicom-rs's registry adapter).
//!
//! Why go through the registry's JPEG-LS Lossless writer rather than CharLS directly: it is the encoder guidesmith
//! already links for transcoding, so the files exercise exactly the codec settings dicom-rs produces and reads.

use std::borrow::Cow;

use dicom_encoding::adapters::{EncodeOptions, PixelDataObject, PixelDataWriter, RawPixelData};
use dicom_encoding::transfer_syntax::Codec;
use dicom_transfer_syntax_registry::entries::JPEG_LS_LOSSLESS_IMAGE_COMPRESSION;

use super::rle::encode_rle_frame;
use super::spec::{Compression, PixelFormat};
use super::SynthError;

/// The Pixel Data value of one slice.
#[derive(Debug)]
pub(crate) enum PixelPayload {
    /// Native 16-bit words (written as OW, byte order per transfer syntax).
    Native(Vec<u16>),
    /// One encapsulated fragment of even length (the frame).
    Fragment(Vec<u8>),
}

/// Encodes the stored words of one slice for `compression`.
pub(crate) fn encode_pixels(
    words: Vec<u16>,
    columns: u16,
    rows: u16,
    format: PixelFormat,
    compression: Compression,
    slice: usize,
) -> Result<PixelPayload, SynthError> {
    let mut fragment = match compression {
        Compression::ExplicitVrLittleEndian
        | Compression::ImplicitVrLittleEndian
        | Compression::ExplicitVrBigEndian
        | Compression::DeflatedExplicitVrLittleEndian => return Ok(PixelPayload::Native(words)),
        Compression::RleLossless => encode_rle_frame(&words, usize::from(columns)),
        Compression::JpegLsLossless => {
            encode_jpeg_ls(&words, columns, rows, format).map_err(|reason| SynthError::Encode {
                slice,
                compression,
                reason,
            })?
        }
    };
    if fragment.len() % 2 == 1 {
        fragment.push(0);
    }
    Ok(PixelPayload::Fragment(fragment))
}

/// JPEG-LS lossless encoding of 16-bit words, `bits_stored` bits per sample.
///
/// JPEG-LS codes unsigned samples of `bits_stored` bits. With 16 bits stored, the two's complement words of signed
/// data are coded as they are (bit-exact, hence lossless). With 12 bits stored, the words are masked to their low
/// 12 bits first, the usual practice: a reader sign-extends from High Bit as PS3.5 8.1.1 requires.
fn encode_jpeg_ls(words: &[u16], columns: u16, rows: u16, format: PixelFormat) -> Result<Vec<u8>, String> {
    let mask: u16 = if format.bits_stored >= 16 {
        0xFFFF
    } else {
        (1u16 << format.bits_stored) - 1
    };
    let bytes: Vec<u8> = words.iter().flat_map(|w| (w & mask).to_le_bytes()).collect();
    let frame = NativeFrame {
        columns,
        rows,
        bits_stored: format.bits_stored,
        bytes,
    };
    let Codec::EncapsulatedPixelData(_, Some(writer)) = JPEG_LS_LOSSLESS_IMAGE_COMPRESSION.codec() else {
        return Err("this build of dicom-rs has no JPEG-LS encoder (feature `charls`)".to_string());
    };
    let mut out = Vec::new();
    writer
        .encode_frame(&frame, 0, EncodeOptions::default(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// One native monochrome 16-bit frame, seen as a DICOM object by a registry encoder.
struct NativeFrame {
    columns: u16,
    rows: u16,
    bits_stored: u16,
    /// Little-endian samples.
    bytes: Vec<u8>,
}

impl PixelDataObject for NativeFrame {
    fn transfer_syntax_uid(&self) -> &str {
        Compression::ExplicitVrLittleEndian.transfer_syntax_uid()
    }
    fn rows(&self) -> Option<u16> {
        Some(self.rows)
    }
    fn cols(&self) -> Option<u16> {
        Some(self.columns)
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        Some(1)
    }
    fn bits_allocated(&self) -> Option<u16> {
        Some(16)
    }
    fn bits_stored(&self) -> Option<u16> {
        Some(self.bits_stored)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        Some("MONOCHROME2")
    }
    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }
    fn number_of_fragments(&self) -> Option<u32> {
        // Native pixel data has no fragments.
        None
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(&self.bytes[..]))
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        None
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        Some(RawPixelData {
            fragments: std::iter::once(self.bytes.clone()).collect(),
            offset_table: Default::default(),
        })
    }
    fn frame_pixel_data(&self, frame: u32) -> Option<Cow<'_, [u8]>> {
        (frame == 0).then_some(Cow::Borrowed(&self.bytes[..]))
    }
}
