//! Writing a synthetic CT series: one CT Image Storage file per slice, in parallel, atomically, deterministically.
//!
//! Why one real file per slice: the production loader reads directories of single-frame files, as scanners and
//! PACS export them, and must cope with every quirk [`SeriesSpec`] can express; so the tests must hand it real
//! files rather than an in-memory volume.
//!
//! Why these rules:
//! - *parallel by slice, bounded memory*: each rayon task samples, encodes and writes one slice and keeps nothing
//!   but the file name, so a 512x512x300 series needs a few slices' worth of memory per thread (plus the optional
//!   HU volumes the caller asks for);
//! - *deterministic*: nothing depends on the clock, the thread count or the visit order (noise is hashed per
//!   voxel, UIDs per seed), so two runs give byte-identical files and a failing test can be replayed;
//! - *atomic*: each file is written under a temporary hidden name in the same directory and renamed, so a reader
//!   never sees a half-written file. Files are not fsync'ed: this is test data, not a durable store.
//!
//! The files carry `PatientName` [`SYNTHETIC_PATIENT_NAME`] and `PatientID` [`SYNTHETIC_PATIENT_ID`] on purpose:
//! the loader must never carry patient identity into its outputs, and tests look for these strings there.

use std::error::Error as StdError;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use dicom_core::value::{PixelFragmentSequence, C};
use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::{Codec, DataRWAdapter};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::grid::GridGeometry;

use super::encode::{encode_pixels, PixelPayload};
use super::hash::derive_uid;
use super::phantom::{round_hu, Evaluator, Phantom};
use super::spec::{format_ds, Compression, SeriesLayout, SeriesSpec, SlicePlacement};
use super::SynthError;

/// SOP Class UID of CT Image Storage.
pub const CT_IMAGE_STORAGE_SOP_CLASS_UID: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Patient Name written in every synthetic file (must never reach a loader's output).
pub const SYNTHETIC_PATIENT_NAME: &str = "SYNTHETIC^PHANTOM";
/// Patient ID written in every synthetic file (must never reach a loader's output).
pub const SYNTHETIC_PATIENT_ID: &str = "SYNTH-0001";
/// Key of the Implementation Class UID of the file meta group ("guidesmi" in ASCII): a fixed UID, so files stay
/// byte-identical from run to run.
const IMPLEMENTATION_UID_KEY: u64 = u64::from_be_bytes(*b"guidesmi");
/// Implementation Version Name of the file meta group (SH, at most 16 characters).
const IMPLEMENTATION_VERSION_NAME: &str = "GUIDESMITH_SYNTH";

/// What [`write_series_with`] returns besides the files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Return the HU a correct loader must produce (`stored + intercept`, noise included).
    pub keep_hu: bool,
    /// Return the noise-free, unrounded HU at each sample point.
    pub keep_noise_free_hu: bool,
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrittenSlice {
    /// Path of the file.
    pub path: PathBuf,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Position, thickness and instance number, as written.
    pub placement: SlicePlacement,
}

/// The result of [`write_series`]: the files and the ground truth a loader is checked against.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenSeries {
    /// The output directory.
    pub dir: PathBuf,
    /// One entry per slice, in `SliceLayout` order (not instance or file-name order).
    pub slices: Vec<WrittenSlice>,
    /// The geometry as written; `layout.geometry` is what a loader should build for untilted, evenly spaced
    /// series.
    pub layout: SeriesLayout,
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Series Instance UID.
    pub series_instance_uid: String,
    /// Frame of Reference UID.
    pub frame_of_reference_uid: String,
    /// With [`WriteOptions::keep_hu`]: HU per voxel, `(k * rows + row) * columns + column`, where k-plane `k`
    /// is slice `layout.volume_slice_order[k]` (the grid order of `layout.geometry` when there is one).
    pub hu: Option<Vec<i16>>,
    /// With [`WriteOptions::keep_noise_free_hu`]: the noise-free HU, same layout as `hu`.
    pub hu_noise_free: Option<Vec<f32>>,
}

impl WrittenSeries {
    /// The files, in `SliceLayout` order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.slices.iter().map(|s| s.path.clone()).collect()
    }

    /// Image Position (Patient) of each slice, in `SliceLayout` order.
    pub fn slice_positions_mm(&self) -> Vec<[f64; 3]> {
        self.slices.iter().map(|s| s.placement.position_mm).collect()
    }

    /// The grid a correct loader builds, for untilted, evenly spaced series.
    pub fn geometry(&self) -> Option<&GridGeometry> {
        self.layout.geometry.as_ref()
    }
}

/// Writes `phantom` as the series `spec` into `dir` (created if needed). Files with the same names are replaced;
/// other files in `dir` are left alone. See [`write_series_with`] to also get the HU volumes.
pub fn write_series(phantom: &Phantom, spec: &SeriesSpec, dir: &Path) -> Result<WrittenSeries, SynthError> {
    write_series_with(phantom, spec, dir, WriteOptions::default())
}

/// Allocates a zeroed vector, reporting a failed allocation as an error instead of aborting.
fn try_zeroed<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>, SynthError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| SynthError::InvalidSpec {
        field: "options",
        reason: format!("cannot allocate the {what} volume of {len} voxels: {e}"),
    })?;
    v.resize(len, T::default());
    Ok(v)
}

/// Splits `volume` into k-planes and hands plane `k` to slice `order[k]`.
fn planes_by_slice<'a, T>(volume: Option<&'a mut Vec<T>>, plane: usize, order: &[usize]) -> Vec<Option<&'a mut [T]>> {
    let mut by_slice: Vec<Option<&'a mut [T]>> = (0..order.len()).map(|_| None).collect();
    if let Some(volume) = volume {
        for (chunk, &s) in volume.chunks_mut(plane.max(1)).zip(order) {
            if let Some(slot) = by_slice.get_mut(s) {
                *slot = Some(chunk);
            }
        }
    }
    by_slice
}

/// [`write_series`], optionally returning the HU volumes (see [`WriteOptions`]).
pub fn write_series_with(
    phantom: &Phantom,
    spec: &SeriesSpec,
    dir: &Path,
    options: WriteOptions,
) -> Result<WrittenSeries, SynthError> {
    phantom.validate()?;
    let layout = spec.layout()?;
    fs::create_dir_all(dir).map_err(|source| SynthError::Io {
        path: dir.to_path_buf(),
        error: source,
    })?;
    let evaluator = Evaluator::new(phantom);
    let plane = usize::from(spec.columns) * usize::from(spec.rows);
    let count = layout.slices.len();
    let len = plane.checked_mul(count).ok_or_else(|| SynthError::InvalidSpec {
        field: "slices",
        reason: format!("{plane} x {count} voxels overflow"),
    })?;
    let mut hu = if options.keep_hu {
        Some(try_zeroed::<i16>(len, "HU")?)
    } else {
        None
    };
    let mut clean = if options.keep_noise_free_hu {
        Some(try_zeroed::<f32>(len, "noise-free HU")?)
    } else {
        None
    };
    let uids = SeriesUids {
        study: spec.study_instance_uid(),
        series: spec.series_instance_uid(),
        frame_of_reference: spec.frame_of_reference_uid(),
        implementation_class: derive_uid(0, &[IMPLEMENTATION_UID_KEY]),
    };
    let tasks: Vec<SliceTask<'_>> = planes_by_slice(hu.as_mut(), plane, &layout.volume_slice_order)
        .into_iter()
        .zip(planes_by_slice(clean.as_mut(), plane, &layout.volume_slice_order))
        .enumerate()
        .map(|(s, (h, c))| (s, h, c))
        .collect();
    let context = SliceContext {
        spec,
        layout: &layout,
        evaluator: &evaluator,
        uids: &uids,
        dir,
    };
    let slices = tasks
        .into_par_iter()
        .map(|(s, hu_plane, clean_plane)| context.write_slice(s, hu_plane, clean_plane))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WrittenSeries {
        dir: dir.to_path_buf(),
        slices,
        layout,
        study_instance_uid: uids.study,
        series_instance_uid: uids.series,
        frame_of_reference_uid: uids.frame_of_reference,
        hu,
        hu_noise_free: clean,
    })
}

/// One slice to write: its index and the k-planes of the requested HU volumes it fills.
type SliceTask<'a> = (usize, Option<&'a mut [i16]>, Option<&'a mut [f32]>);

struct SeriesUids {
    study: String,
    series: String,
    frame_of_reference: String,
    implementation_class: String,
}

/// Everything a slice task reads.
struct SliceContext<'a> {
    spec: &'a SeriesSpec,
    layout: &'a SeriesLayout,
    evaluator: &'a Evaluator,
    uids: &'a SeriesUids,
    dir: &'a Path,
}

/// A DS value as written (the layout holds only finite, pre-quantised values).
fn ds(value: f64) -> String {
    format_ds(value).unwrap_or_else(|| "0".to_string())
}

fn ds_multi(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|&v| ds(v)).collect())
}

/// `error` and its sources, joined by ": " (dicom-rs errors put the useful part in their sources).
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

impl SliceContext<'_> {
    fn write_slice(
        &self,
        s: usize,
        mut hu_plane: Option<&mut [i16]>,
        mut clean_plane: Option<&mut [f32]>,
    ) -> Result<WrittenSlice, SynthError> {
        let spec = self.spec;
        let format = spec.pixel_format;
        let (columns, rows) = (usize::from(spec.columns), usize::from(spec.rows));
        let plane = columns * rows;
        let mut words = Vec::with_capacity(plane);
        for r in 0..rows {
            for c in 0..columns {
                let offset = r * columns + c;
                let clean = self.evaluator.hu(self.layout.pixel_position_mm(s, c, r));
                let noisy = self.evaluator.noisy(clean, (s * plane + offset) as u64);
                let stored = format.stored_from_hu(round_hu(noisy));
                words.push(format.word(stored));
                if let Some(out) = hu_plane.as_deref_mut().and_then(|p| p.get_mut(offset)) {
                    *out = format.hu_from_stored(stored) as i16;
                }
                if let Some(out) = clean_plane.as_deref_mut().and_then(|p| p.get_mut(offset)) {
                    *out = clean as f32;
                }
            }
        }
        let payload = encode_pixels(words, spec.columns, spec.rows, format, spec.compression, s)?;
        let placement = self
            .layout
            .slices
            .get(s)
            .cloned()
            .ok_or_else(|| SynthError::InvalidSpec {
                field: "slices",
                reason: format!("slice {s} is not in the layout"),
            })?;
        let sop_instance_uid = spec.sop_instance_uid(s);
        let bytes = self.serialise(s, &placement, &sop_instance_uid, payload)?;
        let path = self.dir.join(spec.file_name(s, placement.instance_number));
        write_atomically(&path, &bytes)?;
        Ok(WrittenSlice {
            path,
            sop_instance_uid,
            placement,
        })
    }

    /// The complete DICOM file (preamble, meta group, data set) of slice `s`.
    fn serialise(
        &self,
        s: usize,
        placement: &SlicePlacement,
        sop_instance_uid: &str,
        payload: PixelPayload,
    ) -> Result<Vec<u8>, SynthError> {
        let spec = self.spec;
        let layout = self.layout;
        let format = spec.pixel_format;
        let iop = [
            layout.row_direction[0],
            layout.row_direction[1],
            layout.row_direction[2],
            layout.column_direction[0],
            layout.column_direction[1],
            layout.column_direction[2],
        ];
        let mut elements = vec![
            DataElement::new(
                tags::IMAGE_TYPE,
                VR::CS,
                dicom_value!(Strs, ["ORIGINAL", "PRIMARY", "AXIAL"]),
            ),
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, CT_IMAGE_STORAGE_SOP_CLASS_UID),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid),
            DataElement::new(tags::MODALITY, VR::CS, "CT"),
            DataElement::new(tags::MANUFACTURER, VR::LO, "guidesmith synth"),
            DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, spec.series_description.as_str()),
            DataElement::new(tags::PATIENT_NAME, VR::PN, SYNTHETIC_PATIENT_NAME),
            DataElement::new(tags::PATIENT_ID, VR::LO, SYNTHETIC_PATIENT_ID),
            DataElement::new(tags::SLICE_THICKNESS, VR::DS, ds(placement.thickness_mm)),
            DataElement::new(tags::GANTRY_DETECTOR_TILT, VR::DS, ds(layout.gantry_tilt_deg)),
            DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, self.uids.study.as_str()),
            DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, self.uids.series.as_str()),
            DataElement::new(tags::SERIES_NUMBER, VR::IS, spec.series_number.to_string()),
            DataElement::new(tags::INSTANCE_NUMBER, VR::IS, placement.instance_number.to_string()),
            DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, ds_multi(&placement.position_mm)),
            DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, ds_multi(&iop)),
            DataElement::new(
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                self.uids.frame_of_reference.as_str(),
            ),
            DataElement::new(tags::SLICE_LOCATION, VR::DS, ds(placement.slice_location_mm)),
            DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, dicom_value!(U16, 1)),
            DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
            DataElement::new(tags::ROWS, VR::US, dicom_value!(U16, spec.rows)),
            DataElement::new(tags::COLUMNS, VR::US, dicom_value!(U16, spec.columns)),
            DataElement::new(tags::PIXEL_SPACING, VR::DS, ds_multi(&layout.pixel_spacing_mm)),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, dicom_value!(U16, 16)),
            DataElement::new(tags::BITS_STORED, VR::US, dicom_value!(U16, format.bits_stored)),
            DataElement::new(tags::HIGH_BIT, VR::US, dicom_value!(U16, format.bits_stored - 1)),
            DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                dicom_value!(U16, u16::from(format.signed)),
            ),
            DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, format.rescale_intercept.to_string()),
            DataElement::new(tags::RESCALE_SLOPE, VR::DS, "1"),
            DataElement::new(tags::RESCALE_TYPE, VR::LO, "HU"),
        ];
        match payload {
            PixelPayload::Native(words) => elements.push(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(C::from_vec(words)),
            )),
            PixelPayload::Fragment(fragment) => {
                elements.push(DataElement::new(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"));
                elements.push(DataElement::new(
                    tags::PIXEL_DATA,
                    VR::OB,
                    PixelFragmentSequence::new(Vec::<u32>::new(), vec![fragment]),
                ));
            }
        }
        let dicom_error = |e: &dyn StdError| SynthError::Dicom {
            slice: s,
            reason: error_chain(e),
        };
        let object = InMemDicomObject::from_element_iter(elements)
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(spec.compression.transfer_syntax_uid())
                    .implementation_class_uid(self.uids.implementation_class.as_str())
                    .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
            )
            .map_err(|e| dicom_error(&e))?;
        let mut bytes = Vec::with_capacity(usize::from(spec.columns) * usize::from(spec.rows) * 2 + 2048);
        if spec.compression == Compression::DeflatedExplicitVrLittleEndian {
            // dicom-rs deflates while it serialises, one small write per element value or sample, which costs
            // ~50x the time of the rest of the series. Serialise plainly, then deflate the data set in one
            // write through the same registry adapter.
            bytes.extend_from_slice(&[0u8; 128]);
            bytes.extend_from_slice(b"DICM");
            object.meta().write(&mut bytes).map_err(|e| dicom_error(&e))?;
            let mut plain = Vec::with_capacity(bytes.capacity());
            object
                .write_dataset_with_ts(&mut plain, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| dicom_error(&e))?;
            let Codec::Dataset(Some(deflate)) = DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN.codec() else {
                return Err(SynthError::Encode {
                    slice: s,
                    compression: spec.compression,
                    reason: "this build of dicom-rs has no deflate adapter".to_string(),
                });
            };
            let io_error = |source| SynthError::Io {
                path: self.dir.to_path_buf(),
                error: source,
            };
            let mut writer = deflate.adapt_writer(Box::new(&mut bytes));
            writer.write_all(&plain).map_err(io_error)?;
            writer.flush().map_err(io_error)?;
            // Dropping the encoder finishes the deflate stream (into memory, which cannot fail).
            drop(writer);
        } else {
            object.write_all(&mut bytes).map_err(|e| dicom_error(&e))?;
        }
        Ok(bytes)
    }
}

/// Writes `bytes` through the crate's atomic writer (temporary file beside `path`, fsync, rename).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    crate::atomic::write_atomic(path, |w| w.write_all(bytes)).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        error: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{FileNaming, InstanceOrder, PixelFormat, Shape, SliceLayout, SliceThickness};
    use dicom_object::{open_file, DefaultDicomObject};
    use dicom_pixeldata::PixelDecoder;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn floats(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Vec<f64> {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_multi_float64().ok())
            .unwrap_or_default()
    }

    fn text(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> String {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    }

    /// A noisy sphere whose values span air to bone, so every byte plane and sign is exercised.
    fn busy_phantom() -> Phantom {
        Phantom::sphere([0.0, 0.0, 0.0], 5.0, 1400.0)
            .with_layer(
                "box",
                Shape::Box {
                    center_mm: [-3.0, 2.0, 0.0],
                    half_size_mm: [2.0, 1.5, 3.0],
                },
                -300.0,
            )
            .with_noise(25.0, 11)
    }

    /// Stored words a decoder of native, RLE or deflated pixel data must return for HU `hu`.
    fn expected_word(format: PixelFormat, hu: i16) -> u16 {
        format.word(format.stored_from_hu(hu))
    }

    #[test]
    fn every_compression_and_pixel_format_decodes_losslessly() -> TestResult {
        let dir = tempfile::tempdir()?;
        let phantom = busy_phantom();
        let formats = [
            PixelFormat::SIGNED_16,
            PixelFormat::UNSIGNED_16_OFFSET,
            PixelFormat::SIGNED_12,
            PixelFormat::UNSIGNED_12_OFFSET,
        ];
        let mut series_number = 0;
        for compression in Compression::ALL {
            for format in formats {
                series_number += 1;
                let mut spec = SeriesSpec::axial(23, 17, 3, 0.6, 1.5);
                spec.compression = compression;
                spec.pixel_format = format;
                spec.series_number = series_number;
                let written = write_series_with(
                    &phantom,
                    &spec,
                    dir.path(),
                    WriteOptions {
                        keep_hu: true,
                        keep_noise_free_hu: false,
                    },
                )?;
                let hu = written.hu.as_ref().ok_or("hu was requested")?;
                assert!(hu.iter().any(|&v| v < -900) && hu.iter().any(|&v| v > 1300));
                let plane = 23 * 17;
                for (k, &s) in written.layout.volume_slice_order.iter().enumerate() {
                    let obj = open_file(&written.slices[s].path)?;
                    assert_eq!(
                        obj.meta().transfer_syntax().trim_end_matches('\0'),
                        compression.transfer_syntax_uid()
                    );
                    let expected_hu = &hu[k * plane..(k + 1) * plane];
                    if compression == Compression::JpegLsLossless {
                        // This build's dicom-pixeldata has no JPEG-LS codec (no CharLS); the loader decodes it with
                        // pure_jpegls, which is checked against CharLS-encoded files in tests/load_real.rs.
                        let (_, restored) = crate::volume::decode_single(&written.slices[s].path)?;
                        assert_eq!(restored, expected_hu, "{compression:?} {format:?} slice {s}");
                        continue;
                    }
                    let decoded = obj.decode_pixel_data()?;
                    let bytes = decoded.data();
                    assert_eq!(bytes.len(), plane * 2, "{compression:?} {format:?}");
                    for (i, &h) in expected_hu.iter().enumerate() {
                        let word = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
                        assert_eq!(
                            word,
                            expected_word(format, h),
                            "{compression:?} {format:?} slice {s} pixel {i}"
                        );
                    }
                    // The modality LUT of dicom-pixeldata (sign extension from High Bit, then the intercept)
                    // gives back the HU.
                    let restored: Vec<f64> = decoded.to_vec()?;
                    for (i, (&got, &h)) in restored.iter().zip(expected_hu).enumerate() {
                        assert_eq!(got, f64::from(h), "{compression:?} {format:?} HU {i}");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn rle_frames_are_decoded_by_dicom_pixeldata() -> TestResult {
        // A flat, run-friendly image and a noisy one, with an odd width so rows do not align to anything.
        let dir = tempfile::tempdir()?;
        for (n, phantom) in [Phantom::sphere([0.0; 3], 3.0, 1000.0), busy_phantom()]
            .into_iter()
            .enumerate()
        {
            let mut spec = SeriesSpec::axial(37, 11, 2, 0.5, 1.0);
            spec.compression = Compression::RleLossless;
            spec.series_number = n as u32 + 1;
            let written = write_series_with(
                &phantom,
                &spec,
                dir.path(),
                WriteOptions {
                    keep_hu: true,
                    keep_noise_free_hu: false,
                },
            )?;
            let hu = written.hu.ok_or("hu was requested")?;
            let mut decoded_hu = Vec::new();
            for k in written.layout.volume_slice_order.iter() {
                let obj = open_file(&written.slices[*k].path)?;
                let values: Vec<i16> = obj
                    .decode_pixel_data()?
                    .data()
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                decoded_hu.extend(values);
            }
            assert_eq!(decoded_hu, hu);
        }
        Ok(())
    }

    #[test]
    fn geometry_tags_are_written_as_specified() -> TestResult {
        let dir = tempfile::tempdir()?;
        let phantom = Phantom::sphere([1.0, -2.0, 3.0], 6.0, 1000.0);

        // Axial, anisotropic pixels, non-square matrix.
        let mut axial = SeriesSpec::axial(20, 16, 4, 0.5, 1.25).centered_on([1.0, -2.0, 3.0]);
        axial.pixel_spacing_mm = [0.625, 0.5];
        axial.origin_mm = [-4.0, -6.5, -0.75];
        axial.series_number = 1;

        // Oblique: rotated 30 degrees about z then 20 degrees about x.
        let (sz, cz) = 30f64.to_radians().sin_cos();
        let (sx, cx) = 20f64.to_radians().sin_cos();
        let mut oblique = SeriesSpec::axial(18, 14, 3, 0.7, 2.0).centered_on([1.0, -2.0, 3.0]);
        oblique.row_direction = [cz, sz, 0.0];
        oblique.column_direction = [-sz * cx, cz * cx, sx];
        oblique = oblique.centered_on([1.0, -2.0, 3.0]);
        oblique.series_number = 2;

        // GE-style tilt of 18 degrees: IOP [1,0,0, 0,cos,-sin], slices stepping along z.
        let mut tilted = SeriesSpec::axial(16, 16, 5, 0.8, 1.0).centered_on([1.0, -2.0, 3.0]);
        tilted.gantry_tilt_deg = 18.0;
        tilted = tilted.centered_on([1.0, -2.0, 3.0]);
        tilted.series_number = 3;

        for spec in [&axial, &oblique, &tilted] {
            let written = write_series(&phantom, spec, dir.path())?;
            let (sin_t, cos_t) = spec.gantry_tilt_deg.to_radians().sin_cos();
            let row = spec.row_direction;
            let col = spec.column_direction;
            let n = [
                row[1] * col[2] - row[2] * col[1],
                row[2] * col[0] - row[0] * col[2],
                row[0] * col[1] - row[1] * col[0],
            ];
            let expected_col: Vec<f64> = (0..3).map(|a| col[a] * cos_t - n[a] * sin_t).collect();
            for (s, slice) in written.slices.iter().enumerate() {
                let obj = open_file(&slice.path)?;
                let iop = floats(&obj, tags::IMAGE_ORIENTATION_PATIENT);
                let ipp = floats(&obj, tags::IMAGE_POSITION_PATIENT);
                let spacing = floats(&obj, tags::PIXEL_SPACING);
                assert_eq!(iop.len(), 6);
                for a in 0..3 {
                    assert!((iop[a] - row[a]).abs() < 1e-13, "{iop:?}");
                    assert!((iop[3 + a] - expected_col[a]).abs() < 1e-13, "{iop:?}");
                    // The true position: origin plus offset along the (untilted) stacking direction.
                    let expected = spec.origin_mm[a]
                        + n[a] * (s as f64) * {
                            match &spec.slices {
                                SliceLayout::Even { spacing_mm, .. } => *spacing_mm,
                                SliceLayout::Offsets { .. } => f64::NAN,
                            }
                        };
                    assert!((ipp[a] - expected).abs() < 1e-12, "{ipp:?} vs {expected}");
                }
                assert_eq!(spacing, spec.pixel_spacing_mm.to_vec());
                assert_eq!(ipp, slice.placement.position_mm.to_vec());
                assert_eq!(floats(&obj, tags::GANTRY_DETECTOR_TILT), vec![spec.gantry_tilt_deg]);
                assert_eq!(text(&obj, tags::MODALITY), "CT");
                assert_eq!(text(&obj, tags::SOP_CLASS_UID), CT_IMAGE_STORAGE_SOP_CLASS_UID);
                assert_eq!(text(&obj, tags::IMAGE_TYPE), "ORIGINAL\\PRIMARY\\AXIAL");
                assert_eq!(text(&obj, tags::PATIENT_NAME), SYNTHETIC_PATIENT_NAME);
                assert_eq!(text(&obj, tags::PATIENT_ID), SYNTHETIC_PATIENT_ID);
                assert_eq!(text(&obj, tags::FRAME_OF_REFERENCE_UID), written.frame_of_reference_uid);
                assert_eq!(text(&obj, tags::SERIES_INSTANCE_UID), written.series_instance_uid);
                assert_eq!(text(&obj, tags::SOP_INSTANCE_UID), slice.sop_instance_uid);

                // Independent check of the sampling convention, from the tags alone: pixel (c, r) is at
                // IPP + c * PixelSpacing[1] * row + r * PixelSpacing[0] * column.
                let values: Vec<f64> = obj.decode_pixel_data()?.to_vec()?;
                for (r, c) in [(0usize, 0usize), (3, 11), (7, 5), (13, 13)] {
                    let p: Vec<f64> = (0..3)
                        .map(|a| ipp[a] + c as f64 * spacing[1] * iop[a] + r as f64 * spacing[0] * iop[3 + a])
                        .collect();
                    let expected = phantom.hu_at([p[0], p[1], p[2]]).round_ties_even();
                    assert_eq!(values[r * usize::from(spec.columns) + c], expected, "{r} {c}");
                }
            }
            // Untilted, evenly spaced series report the grid a loader should build; tilted ones do not.
            assert_eq!(written.geometry().is_some(), spec.gantry_tilt_deg == 0.0);
            if let Some(g) = written.geometry() {
                for a in 0..3 {
                    // Equal up to the 16-character DS rounding of the written orientation.
                    assert!((g.axes[0][a] - row[a]).abs() < 1e-13);
                    assert!((g.axes[1][a] - col[a]).abs() < 1e-13);
                    assert!((g.axes[2][a] - n[a]).abs() < 1e-13);
                }
                assert_eq!(g.spacing_mm[0], spec.pixel_spacing_mm[1]);
                assert_eq!(g.spacing_mm[1], spec.pixel_spacing_mm[0]);
            }
        }
        Ok(())
    }

    #[test]
    fn uneven_slices_changing_thickness_and_instance_order() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut spec = SeriesSpec::axial(8, 8, 1, 1.0, 1.0);
        spec.slices = SliceLayout::Offsets {
            offsets_mm: vec![0.0, 1.0, 2.0, 4.0, 5.0],
        };
        spec.thickness = SliceThickness::PerSlice {
            thickness_mm: vec![1.0, 1.0, 1.0, 2.0, 2.0],
        };
        spec.instance_order = InstanceOrder::Decreasing;
        spec.file_naming = FileNaming::Shuffled;
        spec.origin_mm = [0.0, 0.0, 10.0];
        let written = write_series(&Phantom::jaw(), &spec, dir.path())?;
        assert!(written.geometry().is_none(), "a missing slice has no regular grid");
        for (s, slice) in written.slices.iter().enumerate() {
            let obj = open_file(&slice.path)?;
            let z = floats(&obj, tags::IMAGE_POSITION_PATIENT)[2];
            assert_eq!(z, 10.0 + [0.0, 1.0, 2.0, 4.0, 5.0][s]);
            assert_eq!(floats(&obj, tags::SLICE_THICKNESS), vec![[1.0, 1.0, 1.0, 2.0, 2.0][s]]);
            assert_eq!(text(&obj, tags::INSTANCE_NUMBER), (5 - s).to_string());
            let name = slice.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert_eq!(name.len(), 16);
            assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
        }
        // The shuffled names do not sort like the slices.
        let names: Vec<_> = written.files();
        let mut sorted = names.clone();
        sorted.sort();
        assert_ne!(names, sorted);
        // Nothing but the five files: no temporary left behind.
        assert_eq!(fs::read_dir(dir.path())?.count(), 5);
        Ok(())
    }

    fn read_all(series: &WrittenSeries) -> Result<Vec<Vec<u8>>, std::io::Error> {
        series.slices.iter().map(|s| fs::read(&s.path)).collect()
    }

    #[test]
    fn output_is_byte_identical_across_runs_and_thread_counts() -> TestResult {
        let phantom = Phantom::jaw().with_noise(20.0, 3);
        for compression in [
            Compression::ExplicitVrLittleEndian,
            Compression::DeflatedExplicitVrLittleEndian,
            Compression::RleLossless,
            Compression::JpegLsLossless,
        ] {
            let mut spec = SeriesSpec::axial(64, 48, 6, 1.6, 2.0);
            spec.compression = compression;
            spec.file_naming = FileNaming::Shuffled;
            let (a, b, c) = (tempfile::tempdir()?, tempfile::tempdir()?, tempfile::tempdir()?);
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
            let two = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
            let first = one.install(|| write_series(&phantom, &spec, a.path()))?;
            let second = two.install(|| write_series(&phantom, &spec, b.path()))?;
            let third = two.install(|| write_series(&phantom, &spec, c.path()))?;
            let names = |w: &WrittenSeries| -> Vec<_> {
                w.slices
                    .iter()
                    .map(|s| s.path.file_name().map(|n| n.to_owned()))
                    .collect()
            };
            assert_eq!(names(&first), names(&second));
            assert_eq!(names(&first), names(&third));
            let bytes = read_all(&first)?;
            assert_eq!(bytes, read_all(&second)?, "{compression:?}: 1 vs 2 threads");
            assert_eq!(bytes, read_all(&third)?, "{compression:?}: two runs");
        }
        Ok(())
    }

    #[test]
    fn written_hu_matches_phantom_sampling_on_the_reported_grid() -> TestResult {
        let dir = tempfile::tempdir()?;
        let phantom = Phantom::jaw().with_noise(15.0, 8);
        let spec = SeriesSpec::axial(96, 96, 8, 1.25, 2.5);
        let written = write_series_with(
            &phantom,
            &spec,
            dir.path(),
            WriteOptions {
                keep_hu: true,
                keep_noise_free_hu: true,
            },
        )?;
        let geometry = written.geometry().ok_or("axial series has a grid")?;
        assert_eq!(written.hu, Some(phantom.sample(geometry)?));
        let clean = written.hu_noise_free.as_ref().ok_or("requested")?;
        assert_eq!(clean, &phantom.sample_noise_free(geometry)?);
        // The three materials of the jaw are all present in the volume.
        for (lo, hi) in [(1400.0, 1600.0), (300.0, 500.0), (0.0, 80.0), (-1100.0, -900.0)] {
            assert!(clean.iter().any(|&v| (lo..hi).contains(&f64::from(v))));
        }
        Ok(())
    }

    #[test]
    fn compressed_syntaxes_really_compress() -> TestResult {
        let dir = tempfile::tempdir()?;
        let size = |compression: Compression, number: u32| -> Result<u64, Box<dyn std::error::Error>> {
            let mut spec = SeriesSpec::axial(96, 96, 2, 1.25, 2.5);
            spec.compression = compression;
            spec.series_number = number;
            let written = write_series(&Phantom::jaw(), &spec, dir.path())?;
            let mut total = 0;
            for slice in &written.slices {
                total += fs::metadata(&slice.path)?.len();
            }
            Ok(total)
        };
        let plain = size(Compression::ExplicitVrLittleEndian, 1)?;
        assert!(plain > 2 * 96 * 96 * 2);
        for (n, compression) in [
            Compression::DeflatedExplicitVrLittleEndian,
            Compression::RleLossless,
            Compression::JpegLsLossless,
        ]
        .into_iter()
        .enumerate()
        {
            let packed = size(compression, n as u32 + 2)?;
            assert!(packed * 2 < plain, "{compression:?}: {packed} vs {plain}");
        }
        Ok(())
    }

    #[test]
    fn invalid_input_is_an_error_and_writes_nothing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("out");
        let spec = SeriesSpec {
            pixel_spacing_mm: [0.0, 1.0],
            ..SeriesSpec::default()
        };
        assert!(matches!(
            write_series(&Phantom::jaw(), &spec, &target),
            Err(SynthError::InvalidSpec { .. })
        ));
        let phantom = Phantom::sphere([0.0; 3], f64::NAN, 0.0);
        assert!(matches!(
            write_series(&phantom, &SeriesSpec::default(), &target),
            Err(SynthError::InvalidPhantom(_))
        ));
        assert!(!target.exists());
        Ok(())
    }
}
