//! Reading one DICOM file into the facts the series assembler needs, or a reason to skip it.
//!
//! A folder from a scanner or a PACS export mixes CT slices with directory files, dose reports, scouts, secondary
//! captures and text. Each file is classified here, on its header alone (pixel data is not read in this pass), into
//! either one `SliceHeader` per frame or a `SkipReason` a person can act on. Files without a file meta group, or
//! whose meta group lacks the transfer syntax, are still read: the transfer syntax is inferred from the first bytes of
//! the data set, and the inference is reported as a note on the slice. Before dicom-rs reads a file, every length it
//! declares is checked against the bytes left (`lengths`, which says why), and a file that fails is skipped naming
//! the element.
//!
//! Patient identity (name, ID, birth date, study dates, accession number, institution) is never copied out of the
//! DICOM object: `SliceHeader` simply has no field for it.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{meta::FileMetaTableBuilder, DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use smallvec::SmallVec;

use super::lengths::{check_data_set, check_file, Extent};

/// Facts about one image frame that decide where it goes in a volume.
#[derive(Clone, Debug)]
pub struct SliceHeader {
    /// The file holding the frame.
    pub path: Arc<PathBuf>,
    /// Frame index within the file (0 for single-frame images).
    pub frame: u32,
    /// Number of frames in the file.
    pub frames_in_file: u32,
    /// SeriesInstanceUID, empty when absent.
    pub series_uid: String,
    /// FrameOfReferenceUID, empty when absent.
    pub frame_of_reference_uid: String,
    /// SeriesNumber.
    pub series_number: Option<i64>,
    /// SeriesDescription (free text of the protocol).
    pub series_description: String,
    /// Modality (CT, MR, ...).
    pub modality: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Transfer syntax UID of the file.
    pub transfer_syntax_uid: String,
    /// InstanceNumber, for messages only (never used for ordering).
    pub instance_number: Option<i64>,
    /// Rows (number of pixels along the column direction).
    pub rows: u32,
    /// Columns (number of pixels along the row direction).
    pub columns: u32,
    /// PixelSpacing: distance between rows, then between columns, in mm.
    pub pixel_spacing_mm: [f64; 2],
    /// ImageOrientationPatient: row direction then column direction cosines.
    pub orientation: [f64; 6],
    /// ImagePositionPatient: centre of the first pixel, LPS mm.
    pub position_mm: [f64; 3],
    /// SliceThickness in mm.
    pub thickness_mm: Option<f64>,
    /// RescaleSlope.
    pub rescale_slope: f64,
    /// RescaleIntercept.
    pub rescale_intercept: f64,
    /// BitsAllocated.
    pub bits_allocated: u16,
    /// BitsStored.
    pub bits_stored: u16,
    /// PixelRepresentation: 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    /// Scanner manufacturer (not identifying).
    pub manufacturer: String,
    /// Scanner model (not identifying).
    pub model: String,
    /// Reconstruction kernel (not identifying).
    pub kernel: String,
    /// Something that was repaired while reading the header (e.g. an inferred transfer syntax).
    pub note: Option<String>,
    /// How the file must be opened again to read pixels.
    pub encoding: FileEncoding,
}

/// How a file's data set is laid out, as found in the header pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEncoding {
    /// A standard Part 10 file: preamble or not, file meta group with a transfer syntax.
    Standard,
    /// The data set starts at `offset` and is encoded with `transfer_syntax_uid` (inferred, no usable meta group).
    Raw {
        /// Byte offset of the first data set element.
        offset: usize,
        /// The inferred transfer syntax.
        transfer_syntax_uid: String,
    },
}

/// Why a file does not contribute a slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Not a DICOM file at all.
    NotDicom(String),
    /// A DICOM file that is not an image (DICOMDIR, structured report, ...).
    NotImage(String),
    /// A DICOM image that is not a cross-sectional greyscale slice (scout, colour, ...).
    NotSlice(String),
    /// A DICOM image whose header is damaged or incomplete.
    Corrupt(String),
    /// A DICOM image with a compression that cannot be decoded here.
    Unsupported(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotDicom(s) => write!(f, "not a DICOM file: {s}"),
            SkipReason::NotImage(s) => write!(f, "not an image: {s}"),
            SkipReason::NotSlice(s) => write!(f, "not a CT slice: {s}"),
            SkipReason::Corrupt(s) => write!(f, "damaged: {s}"),
            SkipReason::Unsupported(s) => write!(f, "unsupported: {s}"),
        }
    }
}

/// Human name of a transfer syntax UID.
pub fn transfer_syntax_name(uid: &str) -> String {
    let uid = uid.trim_end_matches('\0').trim();
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => ts.name().to_string(),
        None => format!("unknown transfer syntax {uid}"),
    }
}

/// Read the header of one file.
pub fn read_header(path: &Path) -> Result<Vec<SliceHeader>, SkipReason> {
    let (obj, encoding, note) = open_object(path, true)?;
    classify(path, &obj, encoding, note)
}

/// Open a file as a DICOM object, up to the pixel data (`header_only`) or whole.
///
/// Returns the object, how it was laid out, and a note when the layout had to be inferred.
pub(crate) fn open_object(
    path: &Path,
    header_only: bool,
) -> Result<(DefaultDicomObject, FileEncoding, Option<String>), SkipReason> {
    let extent = if header_only { Extent::Header } else { Extent::Whole };
    // Lengths are checked before dicom-rs reads anything. A file that fails as the meta group says it is encoded may
    // still read as a bare data set below (some writers declare explicit VR and write implicit VR); if it does not,
    // the length error is what the user is told.
    let first_error = match check_file(path, extent) {
        Err(length) => FirstError::Length(length.to_string()),
        Ok(()) => {
            let mut options = OpenFileOptions::new();
            if header_only {
                options = options.read_until(tags::PIXEL_DATA);
            }
            match options.open_file(path) {
                Ok(mut obj) => {
                    let repaired = repair_unknown_vr(&mut obj);
                    let note = (!repaired.is_empty()).then(|| {
                        format!(
                            "attributes stored with VR UN read by their dictionary VR: {}",
                            repaired.join(", ")
                        )
                    });
                    return Ok((obj, FileEncoding::Standard, note));
                }
                Err(e) => FirstError::Parser(e.to_string()),
            }
        }
    };
    // Not a standard Part 10 file: read the bytes and look for a bare data set.
    let bytes = std::fs::read(path).map_err(|e| SkipReason::NotDicom(format!("cannot read file: {e}")))?;
    let Some((offset, ts_uid)) = infer_raw_dataset(&bytes) else {
        return Err(match first_error {
            FirstError::Length(e) => SkipReason::Corrupt(e),
            FirstError::Parser(e) => classify_open_error(&bytes, &e),
        });
    };
    let obj = open_raw(&bytes, offset, ts_uid, header_only).map_err(|e| match &first_error {
        FirstError::Length(length) => SkipReason::Corrupt(length.clone()),
        FirstError::Parser(first) => SkipReason::Corrupt(format!(
            "no usable file meta group ({first}), and the data set does not parse as {}: {e}",
            transfer_syntax_name(ts_uid)
        )),
    })?;
    let note = format!(
        "no usable file meta group; data set read as {}",
        transfer_syntax_name(ts_uid)
    );
    Ok((
        obj,
        FileEncoding::Raw {
            offset,
            transfer_syntax_uid: ts_uid.to_string(),
        },
        Some(note),
    ))
}

/// Why a file did not open as the Part 10 file it claims to be.
enum FirstError {
    /// A declared length runs past the end (the message names the element).
    Length(String),
    /// dicom-rs refused it.
    Parser(String),
}

/// Open a standard Part 10 file whole (pixel data included), for decoding, once its lengths are checked.
pub(crate) fn open_full(path: &Path) -> Result<DefaultDicomObject, String> {
    check_file(path, Extent::Whole).map_err(|e| e.to_string())?;
    let mut obj = OpenFileOptions::new().open_file(path).map_err(|e| {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        format!("pixel data cannot be read: the file ({size} bytes) ends early or is damaged ({e})")
    })?;
    repair_unknown_vr(&mut obj);
    Ok(obj)
}

/// Attributes this loader reads, with their dictionary VR, so that files which store them as UN (unknown VR, seen
/// after some anonymisers and converters) still read right.
const KNOWN_VRS: &[(Tag, VR)] = &[
    (tags::ROWS, VR::US),
    (tags::COLUMNS, VR::US),
    (tags::BITS_ALLOCATED, VR::US),
    (tags::BITS_STORED, VR::US),
    (tags::HIGH_BIT, VR::US),
    (tags::PIXEL_REPRESENTATION, VR::US),
    (tags::SAMPLES_PER_PIXEL, VR::US),
    (tags::PLANAR_CONFIGURATION, VR::US),
    (tags::IMAGE_POSITION_PATIENT, VR::DS),
    (tags::IMAGE_ORIENTATION_PATIENT, VR::DS),
    (tags::PIXEL_SPACING, VR::DS),
    (tags::SLICE_THICKNESS, VR::DS),
    (tags::RESCALE_SLOPE, VR::DS),
    (tags::RESCALE_INTERCEPT, VR::DS),
    (tags::NUMBER_OF_FRAMES, VR::IS),
    (tags::SERIES_NUMBER, VR::IS),
    (tags::INSTANCE_NUMBER, VR::IS),
    (tags::MODALITY, VR::CS),
    (tags::IMAGE_TYPE, VR::CS),
    (tags::PHOTOMETRIC_INTERPRETATION, VR::CS),
    (tags::SOP_CLASS_UID, VR::UI),
    (tags::SERIES_INSTANCE_UID, VR::UI),
    (tags::FRAME_OF_REFERENCE_UID, VR::UI),
    (tags::SERIES_DESCRIPTION, VR::LO),
];

/// Re-type the known attributes that a file stores with VR UN. Returns the names of those repaired.
fn repair_unknown_vr(obj: &mut InMemDicomObject) -> Vec<&'static str> {
    let mut repaired = Vec::new();
    for &(tag, vr) in KNOWN_VRS {
        let Some(elem) = obj.get(tag) else { continue };
        if elem.vr() != VR::UN {
            continue;
        }
        let Ok(bytes) = elem.value().to_bytes() else {
            continue;
        };
        let value = if vr == VR::US {
            let v: SmallVec<[u16; 2]> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            PrimitiveValue::U16(v)
        } else {
            let text = String::from_utf8_lossy(&bytes);
            let parts: SmallVec<[String; 2]> = text
                .split('\\')
                .map(|p| p.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string())
                .collect();
            PrimitiveValue::Strs(parts)
        };
        obj.put(DataElement::new(tag, vr, value));
        repaired.push(tag_name(tag));
    }
    repaired
}

/// Read a bare data set from `bytes[offset..]` with the given transfer syntax and wrap it with a file meta group.
pub(crate) fn open_raw(
    bytes: &[u8],
    offset: usize,
    ts_uid: &str,
    header_only: bool,
) -> Result<DefaultDicomObject, String> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    // The whole data set is walked even for the header: the bytes are in memory, and the parse below has no
    // `read_until` to stop it at the pixel data.
    check_data_set(bytes.get(offset..).unwrap_or_default(), ts_uid, Extent::Whole).map_err(|e| e.to_string())?;
    let mut reader: Box<dyn Read> = Box::new(Cursor::new(&bytes[offset..]));
    if header_only {
        // Parsing is stopped early by truncating at the pixel data tag when it can be found in the bytes.
        if let Some(cut) = find_pixel_data_tag(&bytes[offset..], ts_uid) {
            reader = Box::new(Cursor::new(&bytes[offset..offset + cut]));
        }
    }
    let dataset = InMemDicomObject::read_dataset_with_ts(reader, ts).map_err(|e| e.to_string())?;
    let sop_class = element_str(&dataset, tags::SOP_CLASS_UID).unwrap_or_default();
    let sop_instance = element_str(&dataset, tags::SOP_INSTANCE_UID).unwrap_or_default();
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(if sop_class.is_empty() {
            "1.2.840.10008.5.1.4.1.1.7"
        } else {
            &sop_class
        })
        .media_storage_sop_instance_uid(if sop_instance.is_empty() {
            "2.25.0"
        } else {
            &sop_instance
        })
        .transfer_syntax(ts_uid)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(dataset.with_exact_meta(meta))
}

/// Offset of the pixel data element header in a bare data set, if the tag bytes are found at an element boundary
/// that looks plausible (used only to stop the header pass early).
fn find_pixel_data_tag(data: &[u8], ts_uid: &str) -> Option<usize> {
    let pattern: [u8; 4] = if ts_uid == EXPLICIT_VR_BIG_ENDIAN {
        [0x7F, 0xE0, 0x00, 0x10]
    } else {
        [0xE0, 0x7F, 0x10, 0x00]
    };
    data.windows(4).rposition(|w| w == pattern)
}

/// Where a bare data set starts and which transfer syntax it uses, judged from its first element.
///
/// Handles three layouts: a bare data set at offset 0; a preamble + `DICM` + a meta group whose transfer syntax is
/// missing; and no preamble but a meta group. Returns `None` when nothing looks like DICOM.
pub(crate) fn infer_raw_dataset(bytes: &[u8]) -> Option<(usize, &'static str)> {
    let mut offset = 0usize;
    if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        offset = 132;
    }
    // Skip a file meta group (group 0002, always explicit VR little endian).
    while bytes.len() >= offset + 8 && bytes[offset] == 0x02 && bytes[offset + 1] == 0x00 {
        let vr = &bytes[offset + 4..offset + 6];
        let (header_len, len) = if matches!(vr, b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN") {
            if bytes.len() < offset + 12 {
                return None;
            }
            (
                12,
                u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().ok()?) as usize,
            )
        } else {
            (
                8,
                u16::from_le_bytes(bytes[offset + 6..offset + 8].try_into().ok()?) as usize,
            )
        };
        offset = offset.checked_add(header_len)?.checked_add(len)?;
    }
    if bytes.len() < offset + 8 {
        return None;
    }
    let first = &bytes[offset..];
    let group_le = u16::from_le_bytes([first[0], first[1]]);
    let group_be = u16::from_be_bytes([first[0], first[1]]);
    let vr_bytes = &first[4..6];
    let explicit = vr_bytes.iter().all(u8::is_ascii_uppercase);
    // Data sets of images start with a low group number (0008 in practice).
    let plausible = |g: u16| (0x0004..=0x0030).contains(&g);
    if plausible(group_le) {
        if explicit {
            Some((offset, uids::EXPLICIT_VR_LITTLE_ENDIAN))
        } else {
            Some((offset, uids::IMPLICIT_VR_LITTLE_ENDIAN))
        }
    } else if plausible(group_be) && explicit {
        Some((offset, EXPLICIT_VR_BIG_ENDIAN))
    } else {
        None
    }
}

fn classify_open_error(bytes: &[u8], error: &str) -> SkipReason {
    let has_magic = bytes.len() > 132 && &bytes[128..132] == b"DICM";
    if !has_magic {
        if bytes.is_empty() {
            return SkipReason::NotDicom("empty file".into());
        }
        let printable = bytes
            .iter()
            .take(512)
            .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            .count();
        if printable * 10 >= bytes.len().min(512) * 9 {
            return SkipReason::NotDicom("a text file (no DICM marker, no data set)".into());
        }
        return SkipReason::NotDicom("no DICM marker and no recognisable data set".into());
    }
    SkipReason::Corrupt(format!("cannot parse the DICOM header: {error}"))
}

fn element_str(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let elem = obj.get(tag)?;
    let s = elem.to_str().ok()?;
    Some(s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string())
}

fn element_f64s(obj: &InMemDicomObject, tag: Tag) -> Option<Result<Vec<f64>, String>> {
    let elem = obj.get(tag)?;
    Some(elem.to_multi_float64().map_err(|_| {
        let raw = elem
            .to_str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "<binary>".into());
        format!("{} is not numeric: {raw:?}", tag_name(tag))
    }))
}

fn element_int(obj: &InMemDicomObject, tag: Tag) -> Option<Result<i64, String>> {
    let elem = obj.get(tag)?;
    Some(elem.to_int::<i64>().map_err(|_| {
        let raw = elem
            .to_str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "<binary>".into());
        format!("{} is not an integer: {raw:?}", tag_name(tag))
    }))
}

fn tag_name(tag: Tag) -> &'static str {
    match tag {
        tags::IMAGE_POSITION_PATIENT => "ImagePositionPatient",
        tags::IMAGE_ORIENTATION_PATIENT => "ImageOrientationPatient",
        tags::PIXEL_SPACING => "PixelSpacing",
        tags::SLICE_THICKNESS => "SliceThickness",
        tags::RESCALE_SLOPE => "RescaleSlope",
        tags::RESCALE_INTERCEPT => "RescaleIntercept",
        tags::ROWS => "Rows",
        tags::COLUMNS => "Columns",
        tags::BITS_ALLOCATED => "BitsAllocated",
        tags::BITS_STORED => "BitsStored",
        tags::PIXEL_REPRESENTATION => "PixelRepresentation",
        tags::SAMPLES_PER_PIXEL => "SamplesPerPixel",
        tags::NUMBER_OF_FRAMES => "NumberOfFrames",
        tags::SERIES_NUMBER => "SeriesNumber",
        tags::INSTANCE_NUMBER => "InstanceNumber",
        tags::HIGH_BIT => "HighBit",
        tags::PLANAR_CONFIGURATION => "PlanarConfiguration",
        tags::MODALITY => "Modality",
        tags::IMAGE_TYPE => "ImageType",
        tags::PHOTOMETRIC_INTERPRETATION => "PhotometricInterpretation",
        tags::SOP_CLASS_UID => "SOPClassUID",
        tags::SERIES_INSTANCE_UID => "SeriesInstanceUID",
        tags::FRAME_OF_REFERENCE_UID => "FrameOfReferenceUID",
        tags::SERIES_DESCRIPTION => "SeriesDescription",
        _ => "an attribute",
    }
}

/// Look an attribute up in a functional group (per-frame item first, then the shared item) or, failing that, at
/// the top level of the data set. Enhanced (multi-frame) images keep geometry in functional groups.
struct FrameView<'a> {
    top: &'a InMemDicomObject,
    per_frame: Option<&'a InMemDicomObject>,
    shared: Option<&'a InMemDicomObject>,
}

impl<'a> FrameView<'a> {
    fn group_item(&self, sequence: Tag) -> Option<&'a InMemDicomObject> {
        for fg in [self.per_frame, self.shared].into_iter().flatten() {
            if let Some(items) = fg.get(sequence).and_then(|e| e.items()) {
                if let Some(first) = items.first() {
                    return Some(first);
                }
            }
        }
        None
    }

    fn f64s(&self, sequence: Tag, tag: Tag) -> Option<Result<Vec<f64>, String>> {
        if let Some(item) = self.group_item(sequence) {
            if let Some(v) = element_f64s(item, tag) {
                return Some(v);
            }
        }
        element_f64s(self.top, tag)
    }
}

fn require_n(value: Option<Result<Vec<f64>, String>>, n: usize, name: &str) -> Result<Vec<f64>, SkipReason> {
    match value {
        None => Err(SkipReason::NotSlice(format!(
            "no {name}: the image cannot be placed in patient space"
        ))),
        Some(Err(e)) => Err(SkipReason::Corrupt(e)),
        Some(Ok(v)) if v.len() == n && v.iter().all(|x| x.is_finite()) => Ok(v),
        Some(Ok(v)) => Err(SkipReason::Corrupt(format!(
            "{name} must be {n} finite numbers, found {v:?}"
        ))),
    }
}

fn int_or(obj: &InMemDicomObject, tag: Tag, default: Option<i64>) -> Result<i64, SkipReason> {
    match element_int(obj, tag) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(SkipReason::Corrupt(e)),
        None => default.ok_or_else(|| SkipReason::Corrupt(format!("{} is missing", tag_name(tag)))),
    }
}

fn classify(
    path: &Path,
    obj: &DefaultDicomObject,
    encoding: FileEncoding,
    note: Option<String>,
) -> Result<Vec<SliceHeader>, SkipReason> {
    let meta = obj.meta();
    let sop_class = element_str(obj, tags::SOP_CLASS_UID)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| meta.media_storage_sop_class_uid().trim_end_matches('\0').to_string());
    if sop_class == uids::MEDIA_STORAGE_DIRECTORY_STORAGE || obj.get(tags::DIRECTORY_RECORD_SEQUENCE).is_some() {
        return Err(SkipReason::NotImage("DICOMDIR (a directory index)".into()));
    }
    let modality = element_str(obj, tags::MODALITY).unwrap_or_default();
    if obj.get(tags::ROWS).is_none() || obj.get(tags::COLUMNS).is_none() {
        let what = match modality.as_str() {
            "SR" => "a structured report (e.g. a dose report)".to_string(),
            "" if sop_class.is_empty() => "no Rows/Columns and no SOP class".to_string(),
            "" => format!("no Rows/Columns (SOP class {sop_class})"),
            m => format!("modality {m} without Rows/Columns (SOP class {sop_class})"),
        };
        return Err(SkipReason::NotImage(what));
    }
    let image_type = element_str(obj, tags::IMAGE_TYPE)
        .unwrap_or_default()
        .to_ascii_uppercase();
    if image_type.split('\\').any(|t| t == "LOCALIZER") {
        return Err(SkipReason::NotSlice("a localizer (scout) image".into()));
    }
    let samples = int_or(obj, tags::SAMPLES_PER_PIXEL, Some(1))?;
    let photometric = element_str(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    if samples != 1 || !(photometric.is_empty() || photometric.starts_with("MONOCHROME")) {
        return Err(SkipReason::NotSlice(format!(
            "a colour image ({samples} samples per pixel, PhotometricInterpretation {photometric})"
        )));
    }
    let ts_uid = match &encoding {
        FileEncoding::Standard => meta.transfer_syntax().trim_end_matches('\0').to_string(),
        FileEncoding::Raw {
            transfer_syntax_uid, ..
        } => transfer_syntax_uid.clone(),
    };
    match TransferSyntaxRegistry.get(&ts_uid) {
        None => return Err(SkipReason::Unsupported(format!("unknown transfer syntax {ts_uid}"))),
        Some(ts) if !ts.can_decode_all() && !super::decode::is_jpeg_ls(&ts_uid) => {
            return Err(SkipReason::Unsupported(format!(
                "pixel data compressed as {} ({ts_uid}), which this build cannot decode",
                ts.name()
            )))
        }
        Some(_) => {}
    }
    let rows = int_or(obj, tags::ROWS, None)?;
    let columns = int_or(obj, tags::COLUMNS, None)?;
    if !(1..=MAX_MATRIX).contains(&rows) || !(1..=MAX_MATRIX).contains(&columns) {
        return Err(SkipReason::Corrupt(format!(
            "matrix {columns}x{rows} is not valid (1 to {MAX_MATRIX} pixels a side)"
        )));
    }
    let bits_allocated = int_or(obj, tags::BITS_ALLOCATED, None)?;
    let bits_stored = int_or(obj, tags::BITS_STORED, Some(bits_allocated))?;
    let pixel_representation = int_or(obj, tags::PIXEL_REPRESENTATION, Some(0))?;
    if !matches!(bits_allocated, 8 | 16 | 32) || bits_stored < 1 || bits_stored > bits_allocated {
        return Err(SkipReason::Unsupported(format!(
            "BitsAllocated {bits_allocated} / BitsStored {bits_stored} (supported: 8, 16 or 32 bits allocated)"
        )));
    }
    let frames = match element_int(obj, tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(Ok(n)) => return Err(SkipReason::Corrupt(format!("NumberOfFrames is {n}"))),
        Some(Err(e)) => return Err(SkipReason::Corrupt(e)),
    };
    let samples = frames as u128 * rows as u128 * columns as u128;
    if frames > 100_000 || samples > MAX_FILE_SAMPLES {
        return Err(SkipReason::Corrupt(format!(
            "NumberOfFrames {frames} of {columns}x{rows} is implausible for one file"
        )));
    }
    let per_frame_items = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let shared = obj
        .get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first());
    if frames > 1 && per_frame_items.map(|i| i.len() as i64) != Some(frames) {
        return Err(SkipReason::Unsupported(format!(
            "a multi-frame image with {frames} frames but no per-frame positions (PerFrameFunctionalGroupsSequence)"
        )));
    }
    let path = Arc::new(path.to_path_buf());
    let series_uid = element_str(obj, tags::SERIES_INSTANCE_UID).unwrap_or_default();
    let frame_of_reference_uid = element_str(obj, tags::FRAME_OF_REFERENCE_UID).unwrap_or_default();
    let series_number = element_int(obj, tags::SERIES_NUMBER).and_then(Result::ok);
    let instance_number = element_int(obj, tags::INSTANCE_NUMBER).and_then(Result::ok);
    let series_description = element_str(obj, tags::SERIES_DESCRIPTION).unwrap_or_default();
    let manufacturer = element_str(obj, tags::MANUFACTURER).unwrap_or_default();
    let model = element_str(obj, tags::MANUFACTURER_MODEL_NAME).unwrap_or_default();
    let kernel = element_str(obj, tags::CONVOLUTION_KERNEL).unwrap_or_default();

    let mut out = Vec::with_capacity(frames as usize);
    for frame in 0..frames as usize {
        let view = FrameView {
            top: obj,
            per_frame: per_frame_items.and_then(|items| items.get(frame)),
            shared,
        };
        let position = require_n(
            view.f64s(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT),
            3,
            "ImagePositionPatient",
        )?;
        let orientation = require_n(
            view.f64s(tags::PLANE_ORIENTATION_SEQUENCE, tags::IMAGE_ORIENTATION_PATIENT),
            6,
            "ImageOrientationPatient",
        )?;
        let spacing = require_n(
            view.f64s(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING),
            2,
            "PixelSpacing",
        )?;
        if spacing.iter().any(|s| *s <= 0.0) {
            return Err(SkipReason::Corrupt(format!(
                "PixelSpacing must be positive, found {spacing:?}"
            )));
        }
        let thickness = match view.f64s(tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS) {
            Some(Ok(v)) => v.first().copied(),
            _ => None,
        };
        let scalar = |tag: Tag, default: f64| -> Result<f64, SkipReason> {
            match view.f64s(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tag) {
                None => Ok(default),
                Some(Ok(v)) => v
                    .first()
                    .copied()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| SkipReason::Corrupt(format!("{} is empty", tag_name(tag)))),
                Some(Err(e)) => Err(SkipReason::Corrupt(e)),
            }
        };
        let rescale_slope = scalar(tags::RESCALE_SLOPE, 1.0)?;
        let rescale_intercept = scalar(tags::RESCALE_INTERCEPT, 0.0)?;
        if rescale_slope == 0.0 {
            return Err(SkipReason::Corrupt("RescaleSlope is 0".into()));
        }
        out.push(SliceHeader {
            path: Arc::clone(&path),
            frame: frame as u32,
            frames_in_file: frames as u32,
            series_uid: series_uid.clone(),
            frame_of_reference_uid: frame_of_reference_uid.clone(),
            series_number,
            series_description: series_description.clone(),
            modality: modality.clone(),
            sop_class_uid: sop_class.clone(),
            transfer_syntax_uid: ts_uid.clone(),
            instance_number,
            rows: rows as u32,
            columns: columns as u32,
            pixel_spacing_mm: [spacing[0], spacing[1]],
            orientation: [
                orientation[0],
                orientation[1],
                orientation[2],
                orientation[3],
                orientation[4],
                orientation[5],
            ],
            position_mm: [position[0], position[1], position[2]],
            thickness_mm: thickness,
            rescale_slope,
            rescale_intercept,
            bits_allocated: bits_allocated as u16,
            bits_stored: bits_stored as u16,
            pixel_representation: pixel_representation as u16,
            manufacturer: manufacturer.clone(),
            model: model.clone(),
            kernel: kernel.clone(),
            note: note.clone(),
            encoding: encoding.clone(),
        });
    }
    Ok(out)
}

/// Largest accepted matrix side: CT reconstructions are at most 1024 or 2048 pixels; more is a damaged header.
const MAX_MATRIX: i64 = 8192;

/// Largest number of samples one file may announce (2^30: 2 GiB of 16-bit samples); more is a damaged header, and
/// believing it would only make the decoder allocate.
const MAX_FILE_SAMPLES: u128 = 1 << 30;

/// Explicit VR big endian (retired in DICOM, still found in old archives).
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_bare_little_endian_explicit_data_set() {
        // (0008,0005) CS length 10 "ISO_IR 100"
        let mut bytes = vec![0x08, 0x00, 0x05, 0x00, b'C', b'S', 10, 0];
        bytes.extend_from_slice(b"ISO_IR 100");
        assert_eq!(infer_raw_dataset(&bytes), Some((0, uids::EXPLICIT_VR_LITTLE_ENDIAN)));
    }

    #[test]
    fn infers_bare_implicit_and_big_endian_data_sets() {
        let implicit = [0x08, 0x00, 0x05, 0x00, 10, 0, 0, 0, b'I', b'S'];
        assert_eq!(infer_raw_dataset(&implicit), Some((0, uids::IMPLICIT_VR_LITTLE_ENDIAN)));
        let big = [0x00, 0x08, 0x00, 0x05, b'C', b'S', 0, 10, b'I', b'S'];
        assert_eq!(infer_raw_dataset(&big), Some((0, EXPLICIT_VR_BIG_ENDIAN)));
    }

    #[test]
    fn text_is_not_dicom() {
        assert_eq!(infer_raw_dataset(b"hello, this is not a DICOM file at all"), None);
        let reason = classify_open_error(b"hello, this is not a DICOM file", "x");
        assert!(
            matches!(reason, SkipReason::NotDicom(ref s) if s.contains("text")),
            "{reason}"
        );
    }
}
