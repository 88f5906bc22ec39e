//! Pixel data to Hounsfield units.
//!
//! Every transfer syntax goes through dicom-pixeldata, which yields the stored samples in native byte order with no
//! LUT applied. The modality LUT (RescaleSlope / RescaleIntercept) is applied here, per frame, with the unused high
//! bits masked (unsigned) or sign-extended from BitsStored (signed), so a 12-bit signed CT stored in 16 bits reads
//! right. HU are rounded to the nearest integer and stored as `i16`; values outside -32768..32767 are clamped and
//! counted, and the count is reported rather than hidden.
//!
//! Uncompressed files (explicit / implicit VR little endian, explicit VR big endian) have a fast path: the file is
//! read once and the PixelData value, found by its element header with exactly the expected length, is converted to
//! HU straight from the file bytes. Through dicom-object and dicom-pixeldata the same file is parsed into an
//! element tree, its samples converted to `u16`, copied back to bytes and copied again before the HU pass; the fast
//! path does one read and one pass, which is what brings the loader under the peers (docs/PERFORMANCE.md has both,
//! measured in the same run). Anything the fast path does not recognise (a pixel data element it cannot find with
//! the expected length, a deflated or encapsulated syntax) goes through dicom-pixeldata. Tests check that both
//! paths give identical volumes.
//!
//! JPEG-LS (lossless and near-lossless) is decoded here with `pure_jpegls` from the frame's encapsulated fragments,
//! not through dicom-pixeldata's CharLS adapter: CharLS is C++ built by cmake, and guidesmith builds with nothing but
//! the Rust toolchain. `docs/PERFORMANCE.md` has the two decoders measured on the same files.

use std::path::Path;

use dicom_pixeldata::PixelDecoder;

use super::header::{open_full, open_raw, FileEncoding, SliceHeader};

/// What happened while decoding the frames of one file.
#[derive(Debug, Default, Clone, Copy)]
pub struct DecodeStats {
    /// Samples whose HU value fell outside the i16 range and were clamped.
    pub clamped: u64,
}

/// One frame to decode and where its HU go.
pub struct FrameTarget<'a> {
    /// Frame index within the file.
    pub frame: u32,
    /// RescaleSlope of this frame.
    pub slope: f64,
    /// RescaleIntercept of this frame.
    pub intercept: f64,
    /// Output plane of `rows * columns` samples.
    pub out: &'a mut [i16],
}

/// Decode the frames `frames` (indices into the file) of one file into the matching output planes.
///
/// `header` describes the file (all frames of a file share the pixel format). Each output plane must hold
/// `rows * columns` samples.
pub fn decode_file_frames(header: &SliceHeader, frames: &mut [FrameTarget<'_>]) -> Result<DecodeStats, String> {
    if native_fast_path_enabled() {
        if let Some(stats) = decode_native(header, frames)? {
            return Ok(stats);
        }
    }
    // Codecs of third-party crates may panic on malformed data; a damaged file must be an error, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_with_pixeldata(header, frames)))
        .unwrap_or_else(|_| Err("the pixel data decoder failed on malformed data".to_string()))
}

/// `GUIDESMITH_NATIVE_FAST_PATH=0` turns the fast path off (for measuring and cross-checking the two paths).
fn native_fast_path_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("GUIDESMITH_NATIVE_FAST_PATH").map_or(true, |v| v != "0"))
}

/// Byte order of stored samples.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

/// The fast path for uncompressed files; `Ok(None)` when it does not apply.
fn decode_native(header: &SliceHeader, frames: &mut [FrameTarget<'_>]) -> Result<Option<DecodeStats>, String> {
    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
    const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
    const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
    if header.encoding != FileEncoding::Standard {
        return Ok(None);
    }
    let ts = header.transfer_syntax_uid.as_str();
    if ts != EXPLICIT_LE && ts != IMPLICIT_LE && ts != EXPLICIT_BE {
        return Ok(None);
    }
    let frame_len = header.rows as usize * header.columns as usize * usize::from(header.bits_allocated / 8);
    let value_len = frame_len * header.frames_in_file as usize;
    let Ok(value_len32) = u32::try_from(value_len) else {
        return Ok(None);
    };
    READ_BUFFER.with(|cell| {
        let mut bytes = cell.borrow_mut();
        read_into(header.path.as_path(), &mut bytes)?;
        decode_native_bytes(
            header,
            frames,
            &bytes,
            ts == EXPLICIT_BE,
            ts == EXPLICIT_LE,
            value_len32,
            frame_len,
        )
    })
}

thread_local! {
    /// One file's bytes per worker thread, reused so that reading a series does not fault in fresh pages per file.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn read_into(path: &Path, buffer: &mut Vec<u8>) -> Result<(), String> {
    use std::io::Read;
    buffer.clear();
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    file.read_to_end(buffer).map_err(|e| format!("cannot read file: {e}"))?;
    Ok(())
}

fn decode_native_bytes(
    header: &SliceHeader,
    frames: &mut [FrameTarget<'_>],
    bytes: &[u8],
    big_endian: bool,
    explicit: bool,
    value_len32: u32,
    frame_len: usize,
) -> Result<Option<DecodeStats>, String> {
    let value_len = value_len32 as usize;
    let found = if big_endian {
        find_element(bytes, &[0x7F, 0xE0, 0x00, 0x10], true, &value_len32.to_be_bytes())
    } else {
        find_element(bytes, &[0xE0, 0x7F, 0x10, 0x00], explicit, &value_len32.to_le_bytes())
    };
    let Some(start) = found else { return Ok(None) };
    let Some(value) = bytes.get(start..start + value_len) else {
        return Ok(None);
    };
    let order = if big_endian { ByteOrder::Big } else { ByteOrder::Little };
    let mut stats = DecodeStats::default();
    for target in frames.iter_mut() {
        let at = target.frame as usize * frame_len;
        let Some(frame) = value.get(at..at + frame_len) else {
            return Ok(None);
        };
        stats.clamped += to_hu(header, frame, order, target.slope, target.intercept, target.out);
    }
    Ok(Some(stats))
}

/// Offset of the value of the first top-level-looking element with tag bytes `tag`, VR OW/OB (explicit) or none
/// (implicit), and exactly the length bytes `len`. The length must match exactly, so icon images and other nested
/// pixel data (shorter) are not mistaken for the image.
fn find_element(bytes: &[u8], tag: &[u8; 4], explicit: bool, len: &[u8; 4]) -> Option<usize> {
    let header_len = if explicit { 12 } else { 8 };
    let mut from = 0;
    while let Some(rel) = bytes.get(from..)?.windows(4).position(|w| w == tag) {
        let at = from + rel;
        let h = bytes.get(at..at + header_len)?;
        let ok = if explicit {
            (&h[4..6] == b"OW" || &h[4..6] == b"OB") && h[6] == 0 && h[7] == 0 && &h[8..12] == len
        } else {
            &h[4..8] == len
        };
        if ok {
            return Some(at + header_len);
        }
        from = at + 1;
    }
    None
}

/// Decode through dicom-object and dicom-pixeldata (every transfer syntax).
fn decode_with_pixeldata(header: &SliceHeader, frames: &mut [FrameTarget<'_>]) -> Result<DecodeStats, String> {
    let obj = match &header.encoding {
        FileEncoding::Standard => open_full(&header.path)?,
        FileEncoding::Raw {
            offset,
            transfer_syntax_uid,
        } => {
            let bytes = std::fs::read(header.path.as_path()).map_err(|e| format!("cannot read file: {e}"))?;
            open_raw(&bytes, *offset, transfer_syntax_uid, false)?
        }
    };
    if is_jpeg_ls(&header.transfer_syntax_uid) {
        return decode_jpeg_ls(&obj, header, frames);
    }
    let decoded = obj.decode_pixel_data().map_err(|e| {
        format!(
            "cannot decode pixel data ({}): {e}",
            super::header::transfer_syntax_name(&header.transfer_syntax_uid)
        )
    })?;
    let rows = header.rows as usize;
    let columns = header.columns as usize;
    if decoded.rows() as usize != rows || decoded.columns() as usize != columns {
        return Err(format!(
            "decoded image is {}x{} but the header says {columns}x{rows}",
            decoded.columns(),
            decoded.rows()
        ));
    }
    let bytes_per_sample = usize::from(header.bits_allocated / 8);
    let frame_len = rows * columns * bytes_per_sample;
    let data = decoded.data();
    let mut stats = DecodeStats::default();
    for target in frames.iter_mut() {
        let frame = target.frame;
        let start = frame as usize * frame_len;
        let end = start + frame_len;
        let Some(bytes) = data.get(start..end) else {
            return Err(format!(
                "pixel data is truncated: frame {} needs bytes {start}..{end} but only {} were decoded",
                frame + 1,
                data.len()
            ));
        };
        stats.clamped += to_hu(
            header,
            bytes,
            ByteOrder::NATIVE,
            target.slope,
            target.intercept,
            target.out,
        );
    }
    Ok(stats)
}

/// JPEG-LS Lossless (.80) or Near-Lossless (.81), decoded here rather than by dicom-pixeldata.
pub(crate) fn is_jpeg_ls(transfer_syntax_uid: &str) -> bool {
    matches!(
        transfer_syntax_uid.trim_end_matches('\0').trim(),
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81"
    )
}

/// Decode JPEG-LS frames with `pure_jpegls`: each frame's fragments (joined by the basic offset table when a frame
/// spans several) are one JPEG-LS stream of `bits_stored` bit samples.
fn decode_jpeg_ls(
    obj: &dicom_object::DefaultDicomObject,
    header: &SliceHeader,
    frames: &mut [FrameTarget<'_>],
) -> Result<DecodeStats, String> {
    use dicom_encoding::adapters::PixelDataObject;
    let samples_per_pixel = obj.samples_per_pixel().unwrap_or(1);
    if samples_per_pixel != 1 || !matches!(header.bits_allocated, 8 | 16) {
        return Err(format!(
            "JPEG-LS with {samples_per_pixel} samples per pixel and {} bits allocated is not supported (only \
             monochrome 8 or 16 bit)",
            header.bits_allocated
        ));
    }
    let mut stats = DecodeStats::default();
    let mut bytes = Vec::new();
    for target in frames.iter_mut() {
        let stream = obj
            .frame_pixel_data(target.frame)
            .ok_or_else(|| format!("JPEG-LS pixel data has no frame {}", target.frame + 1))?;
        let (words, width, height) = jpegls::decode(&stream, header.columns, header.rows)
            .map_err(|e| format!("cannot decode JPEG-LS frame {}: {e}", target.frame + 1))?;
        if width != header.columns || height != header.rows {
            return Err(format!(
                "JPEG-LS frame {} is {width}x{height} but the header says {}x{}",
                target.frame + 1,
                header.columns,
                header.rows
            ));
        }
        bytes.clear();
        if header.bits_allocated == 8 {
            bytes.extend(words.iter().map(|&w| w as u8));
        } else {
            bytes.extend(words.iter().flat_map(|w| w.to_ne_bytes()));
        }
        stats.clamped += to_hu(
            header,
            &bytes,
            ByteOrder::NATIVE,
            target.slope,
            target.intercept,
            target.out,
        );
    }
    Ok(stats)
}

/// Convert one frame of native samples to HU into `out`. Returns the number of clamped samples.
fn to_hu(h: &SliceHeader, bytes: &[u8], order: ByteOrder, slope: f64, intercept: f64, out: &mut [i16]) -> u64 {
    let signed = h.pixel_representation == 1;
    let bits = u32::from(h.bits_stored);
    let mut clamped = 0u64;
    let integer_rescale = slope == 1.0 && intercept.fract() == 0.0 && intercept.abs() < 65536.0;
    if h.bits_allocated == 16 && integer_rescale && (1..=16).contains(&bits) {
        return to_hu_16_integer(bytes, order, bits, signed, intercept as i32, out);
    }
    let icpt = intercept as i64;
    let mut store = |dst: &mut i16, raw: i64| {
        let v = if integer_rescale {
            raw + icpt
        } else {
            (raw as f64 * slope + intercept).round() as i64
        };
        if v < i64::from(i16::MIN) || v > i64::from(i16::MAX) {
            clamped += 1;
        }
        *dst = v.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
    };
    match h.bits_allocated {
        8 => {
            for (dst, &b) in out.iter_mut().zip(bytes) {
                store(dst, extend(u64::from(b), bits, signed));
            }
        }
        16 => {
            for (dst, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                let raw = match order {
                    ByteOrder::Little => u16::from_le_bytes([c[0], c[1]]),
                    ByteOrder::Big => u16::from_be_bytes([c[0], c[1]]),
                };
                store(dst, extend(u64::from(raw), bits, signed));
            }
        }
        _ => {
            for (dst, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                let raw = match order {
                    ByteOrder::Little => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    ByteOrder::Big => u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                };
                store(dst, extend(u64::from(raw), bits, signed));
            }
        }
    }
    clamped
}

/// The common CT case (16 bits allocated, slope 1, integer intercept), written so the compiler vectorises it.
fn to_hu_16_integer(bytes: &[u8], order: ByteOrder, bits: u32, signed: bool, intercept: i32, out: &mut [i16]) -> u64 {
    let shift = 16 - bits;
    let mut clamped = 0u64;
    for (dst, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let word = match order {
            ByteOrder::Little => u16::from_le_bytes([c[0], c[1]]),
            ByteOrder::Big => u16::from_be_bytes([c[0], c[1]]),
        };
        // Drop the bits above BitsStored, sign-extending from the top stored bit when signed.
        let raw = if signed {
            i32::from(((word << shift) as i16) >> shift)
        } else {
            i32::from((word << shift) >> shift)
        };
        let v = raw + intercept;
        clamped += u64::from(!(-32768..=32767).contains(&v));
        *dst = v.clamp(-32768, 32767) as i16;
    }
    clamped
}

impl ByteOrder {
    /// dicom-pixeldata hands out samples in the machine's byte order.
    const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
}

/// Keep the low `bits` of a stored sample, sign-extending when the representation is signed.
#[inline]
fn extend(raw: u64, bits: u32, signed: bool) -> i64 {
    let masked = if bits >= 64 { raw } else { raw & ((1u64 << bits) - 1) };
    if signed && bits > 0 && bits < 64 && (masked >> (bits - 1)) & 1 == 1 {
        masked as i64 - (1i64 << bits)
    } else {
        masked as i64
    }
}

/// Decode a single file's first frame to HU, ignoring geometry: the raw image as a user of one file expects it.
pub fn decode_single(path: &Path) -> Result<(SliceHeader, Vec<i16>), String> {
    let headers = super::header::read_header(path).map_err(|e| e.to_string())?;
    let header = headers.into_iter().next().ok_or("no frame")?;
    let mut out = vec![0i16; header.rows as usize * header.columns as usize];
    let (slope, intercept) = (header.rescale_slope, header.rescale_intercept);
    let target = FrameTarget {
        frame: 0,
        slope,
        intercept,
        out: &mut out[..],
    };
    decode_file_frames(&header, &mut [target])?;
    Ok((header, out))
}

#[cfg(test)]
mod tests {
    use super::extend;

    #[test]
    fn sign_extension_from_bits_stored() {
        assert_eq!(extend(0x0FFF, 12, true), -1);
        assert_eq!(extend(0x07FF, 12, true), 2047);
        assert_eq!(extend(0xF800, 12, true), -2048); // high bits above BitsStored are ignored
        assert_eq!(extend(0xFFFF, 12, false), 4095);
        assert_eq!(extend(0xFFFF, 16, true), -1);
    }
}
