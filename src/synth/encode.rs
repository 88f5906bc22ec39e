//! Pixel data of one slice in the form its transfer syntax needs: native 16-bit words, or one encapsulated
//! fragment (RLE Lossless by `synth::rle`, JPEG-LS Lossless by `pure_jpegls`, the codec the loader decodes with;
//! its streams are ITU-T T.87 conformant and checked against CharLS by that crate's interop tests).

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
    let masked: Vec<u16> = words.iter().map(|w| w & mask).collect();
    let mut options = jpegls::EncodeOptions::default();
    options.precision = Some(format.bits_stored.clamp(2, 16) as u8);
    let mut out = Vec::new();
    jpegls::encode_with_options(&masked, u32::from(columns), u32::from(rows), &options, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
