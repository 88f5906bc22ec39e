//! What series to write: matrix, spacing, slice placement, orientation, tilt, pixel format, transfer syntax.
//!
//! Why so many knobs: each one is a way real CT series differ and a way a loader can be wrong. Uneven or missing
//! slices, a thickness that changes mid-series, an oblique orientation, a GE-style gantry tilt (image planes
//! tilted while the table steps along z, so slices are sheared relative to their normal), unsigned storage with a
//! -1024 intercept, 12-bit data, every common transfer syntax, shuffled file names and reversed instance numbers.
//!
//! Why values are quantised here: DICOM stores positions and spacings as decimal strings of at most 16 characters
//! (VR DS). [`SeriesSpec::layout`] rounds every such value to what will actually be written and the writer samples
//! the phantom at those rounded positions, so "the position in the file" and "where the pixel was sampled" are the
//! same number and a loader can be checked to 1e-9 mm rather than to the rounding of a string.

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::grid::GridGeometry;

use super::hash::{derive_uid, hash_words};
use super::SynthError;

/// Transfer syntax of the written files. All are lossless.
///
/// JPEG baseline is deliberately absent: dicom-rs's JPEG encoder is 8-bit only, which cannot carry CT numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    /// 1.2.840.10008.1.2.1
    ExplicitVrLittleEndian,
    /// 1.2.840.10008.1.2
    ImplicitVrLittleEndian,
    /// 1.2.840.10008.1.2.2 (retired, but still met in archives)
    ExplicitVrBigEndian,
    /// 1.2.840.10008.1.2.1.99: the whole data set deflated
    DeflatedExplicitVrLittleEndian,
    /// 1.2.840.10008.1.2.5: PackBits per byte plane (PS3.5 Annex G), encoded by `synth::rle`
    RleLossless,
    /// 1.2.840.10008.1.2.4.80, encoded by pure_jpegls
    JpegLsLossless,
}

impl Compression {
    /// Every variant, for tests that cover them all.
    pub const ALL: [Compression; 6] = [
        Compression::ExplicitVrLittleEndian,
        Compression::ImplicitVrLittleEndian,
        Compression::ExplicitVrBigEndian,
        Compression::DeflatedExplicitVrLittleEndian,
        Compression::RleLossless,
        Compression::JpegLsLossless,
    ];

    /// The Transfer Syntax UID written in the file meta group.
    pub fn transfer_syntax_uid(self) -> &'static str {
        match self {
            Compression::ExplicitVrLittleEndian => "1.2.840.10008.1.2.1",
            Compression::ImplicitVrLittleEndian => "1.2.840.10008.1.2",
            Compression::ExplicitVrBigEndian => "1.2.840.10008.1.2.2",
            Compression::DeflatedExplicitVrLittleEndian => "1.2.840.10008.1.2.1.99",
            Compression::RleLossless => "1.2.840.10008.1.2.5",
            Compression::JpegLsLossless => "1.2.840.10008.1.2.4.80",
        }
    }

    /// True when the pixel data is encapsulated (fragments) rather than native.
    pub fn is_encapsulated(self) -> bool {
        matches!(self, Compression::RleLossless | Compression::JpegLsLossless)
    }
}

/// Where the slices are along the stacking direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SliceLayout {
    /// `count` slices at offsets `0, spacing_mm, 2 * spacing_mm, ...` (a negative spacing stacks them backwards).
    Even {
        /// Number of slices.
        count: usize,
        /// Distance between consecutive slices along the stacking direction, mm (non-zero).
        spacing_mm: f64,
    },
    /// One slice per offset (mm along the stacking direction), in this order: uneven spacing, a missing slice
    /// (a gap), even duplicates or an unsorted list are all expressible.
    Offsets {
        /// Offsets in mm from `origin_mm` along the stacking direction.
        offsets_mm: Vec<f64>,
    },
}

impl SliceLayout {
    /// Number of slices.
    pub fn count(&self) -> usize {
        match self {
            SliceLayout::Even { count, .. } => *count,
            SliceLayout::Offsets { offsets_mm } => offsets_mm.len(),
        }
    }

    /// Offset of every slice, mm, in slice order.
    pub fn offsets_mm(&self) -> Vec<f64> {
        match self {
            SliceLayout::Even { count, spacing_mm } => (0..*count).map(|s| s as f64 * spacing_mm).collect(),
            SliceLayout::Offsets { offsets_mm } => offsets_mm.clone(),
        }
    }
}

/// Slice Thickness (0018,0050) of each slice. It is metadata only: the phantom is point-sampled at the slice
/// plane whatever the thickness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SliceThickness {
    /// The same thickness for every slice, mm.
    Uniform {
        /// Thickness in mm.
        thickness_mm: f64,
    },
    /// One thickness per slice, in slice order (to change it mid-series), mm.
    PerSlice {
        /// Thickness of each slice, mm.
        thickness_mm: Vec<f64>,
    },
}

/// How the stored pixel values encode HU: `HU = stored + rescale_intercept` (Rescale Slope is always 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelFormat {
    /// Bits Stored: 12 or 16 (Bits Allocated is always 16, High Bit is `bits_stored - 1`).
    pub bits_stored: u16,
    /// Pixel Representation 1 (two's complement) when true, 0 (unsigned) when false.
    pub signed: bool,
    /// Rescale Intercept, HU.
    pub rescale_intercept: i32,
}

impl PixelFormat {
    /// Signed 16-bit, intercept 0: the most common CT storage.
    pub const SIGNED_16: PixelFormat = PixelFormat {
        bits_stored: 16,
        signed: true,
        rescale_intercept: 0,
    };
    /// Unsigned 16-bit with intercept -1024 (many Siemens and GE series).
    pub const UNSIGNED_16_OFFSET: PixelFormat = PixelFormat {
        bits_stored: 16,
        signed: false,
        rescale_intercept: -1024,
    };
    /// Signed 12-bit (-2048..=2047), intercept 0.
    pub const SIGNED_12: PixelFormat = PixelFormat {
        bits_stored: 12,
        signed: true,
        rescale_intercept: 0,
    };
    /// Unsigned 12-bit (0..=4095) with intercept -1024, so HU -1024..=3071.
    pub const UNSIGNED_12_OFFSET: PixelFormat = PixelFormat {
        bits_stored: 12,
        signed: false,
        rescale_intercept: -1024,
    };

    /// Smallest and largest storable value.
    pub fn stored_range(self) -> (i32, i32) {
        let bits = u32::from(self.bits_stored.clamp(1, 16));
        if self.signed {
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        } else {
            (0, (1 << bits) - 1)
        }
    }

    /// The stored value for a CT number, saturating at the storable range.
    pub fn stored_from_hu(self, hu: i16) -> i32 {
        let (lo, hi) = self.stored_range();
        (i32::from(hu) - self.rescale_intercept).clamp(lo, hi)
    }

    /// The CT number a loader computes from a stored value.
    pub fn hu_from_stored(self, stored: i32) -> i32 {
        stored + self.rescale_intercept
    }

    /// The 16-bit word of a stored value: two's complement (sign-extended to 16 bits) when signed.
    pub fn word(self, stored: i32) -> u16 {
        if self.signed {
            (stored as i16) as u16
        } else {
            stored as u16
        }
    }

    fn validate(self) -> Result<(), SynthError> {
        if self.bits_stored != 12 && self.bits_stored != 16 {
            return Err(SynthError::InvalidSpec {
                field: "pixel_format.bits_stored",
                reason: format!("must be 12 or 16, got {}", self.bits_stored),
            });
        }
        if self.rescale_intercept.abs() > 32768 {
            return Err(SynthError::InvalidSpec {
                field: "pixel_format.rescale_intercept",
                reason: format!("must be within +-32768, got {}", self.rescale_intercept),
            });
        }
        Ok(())
    }
}

/// How files are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileNaming {
    /// `s<series>_i<instance>.dcm`, sorting like the instance numbers.
    Ordered,
    /// 16 hex digits hashed from the UID seed, series and slice, no extension: the directory order says nothing
    /// about slice order, and a loader cannot rely on a `.dcm` extension.
    Shuffled,
}

/// How Instance Numbers relate to slice order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceOrder {
    /// Slice `s` (in `SliceLayout` order) is instance `s + 1`.
    Increasing,
    /// Slice `s` is instance `count - s`: instance 1 is the last slice.
    Decreasing,
}

/// Description of one synthetic CT series. Public fields, with [`SeriesSpec::axial`] and
/// [`SeriesSpec::centered_on`] to start from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeriesSpec {
    /// Columns (0028,0011): pixels per row.
    pub columns: u16,
    /// Rows (0028,0010).
    pub rows: u16,
    /// Pixel Spacing (0028,0030) in DICOM order: `[distance between rows, distance between columns]`, mm.
    pub pixel_spacing_mm: [f64; 2],
    /// Slice offsets along the stacking direction.
    pub slices: SliceLayout,
    /// Slice Thickness of each slice.
    pub thickness: SliceThickness,
    /// Direction of increasing column index before tilt (first half of Image Orientation (Patient)); unit.
    pub row_direction: [f64; 3],
    /// Direction of increasing row index before tilt (second half of Image Orientation (Patient)); unit and
    /// orthogonal to `row_direction`.
    pub column_direction: [f64; 3],
    /// GE-style gantry tilt, degrees, |tilt| < 60. The image plane is rotated about `row_direction` so that the
    /// column direction becomes `column_direction * cos(t) - normal * sin(t)` (for an axial series,
    /// `[0, cos t, -sin t]`), while slices keep stepping along the untilted normal (the table axis). Slices are then
    /// sheared: the stacking direction is not the slice normal.
    pub gantry_tilt_deg: f64,
    /// Image Position (Patient) of a slice at offset 0: the patient position (LPS mm) of its first pixel's centre.
    pub origin_mm: [f64; 3],
    /// Seed of the Study, Series, Frame of Reference and SOP Instance UIDs and of shuffled file names. Study and
    /// Frame of Reference UIDs depend on this seed only, so two series with the same seed and different
    /// `series_number`s belong to one study and share a frame of reference. Two specs with the same seed and
    /// series number get the same Series and SOP Instance UIDs (and file names) whatever else differs: change
    /// one of them for every distinct series.
    pub uid_seed: u64,
    /// Series Number (0020,0011).
    pub series_number: u32,
    /// Series Description (0008,103E), at most 64 characters, no backslash.
    pub series_description: String,
    /// Transfer syntax.
    pub compression: Compression,
    /// Stored pixel format.
    pub pixel_format: PixelFormat,
    /// File naming.
    pub file_naming: FileNaming,
    /// Instance numbering.
    pub instance_order: InstanceOrder,
}

impl Default for SeriesSpec {
    fn default() -> Self {
        SeriesSpec::axial(64, 64, 32, 1.0, 1.0)
    }
}

/// Where one slice is, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlicePlacement {
    /// Image Position (Patient), LPS mm, as written.
    pub position_mm: [f64; 3],
    /// Offset along the stacking direction, mm (from the spec).
    pub offset_mm: f64,
    /// Slice Thickness, mm, as written.
    pub thickness_mm: f64,
    /// Slice Location (0020,1041): the position projected on the slice normal, mm, as written.
    pub slice_location_mm: f64,
    /// Instance Number.
    pub instance_number: u32,
}

/// The series geometry exactly as it will be written (every DS value rounded to its written form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesLayout {
    /// Row direction (first three values of Image Orientation (Patient)), as written.
    pub row_direction: [f64; 3],
    /// Column direction (last three values of Image Orientation (Patient)), after tilt, as written.
    pub column_direction: [f64; 3],
    /// Unit slice normal `row x column`.
    pub normal: [f64; 3],
    /// Unit direction along which offsets are measured (the untilted normal).
    pub stack_direction: [f64; 3],
    /// Pixel Spacing `[row spacing, column spacing]`, mm, as written.
    pub pixel_spacing_mm: [f64; 2],
    /// Gantry/Detector Tilt, degrees, as written.
    pub gantry_tilt_deg: f64,
    /// One entry per slice, in `SliceLayout` order.
    pub slices: Vec<SlicePlacement>,
    /// The grid a correct loader should build, when the slices are untilted, distinct and evenly spaced (in
    /// any order): axes `[row, column, normal]`, origin at the slice lowest along the normal.
    pub geometry: Option<GridGeometry>,
    /// For each k-plane of `geometry` (or, without a geometry, each slice in `SliceLayout` order), the index of
    /// the slice it comes from.
    pub volume_slice_order: Vec<usize>,
}

impl SeriesLayout {
    /// Patient position (LPS mm) of the centre of pixel (`column`, `row`) of slice `slice`, where the writer
    /// sampled the phantom: `IPP + column * column_spacing * row_dir + row * row_spacing * column_dir`.
    #[inline]
    pub fn pixel_position_mm(&self, slice: usize, column: usize, row: usize) -> [f64; 3] {
        let ipp = self.slices.get(slice).map_or([f64::NAN; 3], |s| s.position_mm);
        let u = column as f64 * self.pixel_spacing_mm[1];
        let v = row as f64 * self.pixel_spacing_mm[0];
        let (r, c) = (&self.row_direction, &self.column_direction);
        [
            ipp[0] + u * r[0] + v * c[0],
            ipp[1] + u * r[1] + v * c[1],
            ipp[2] + u * r[2] + v * c[2],
        ]
    }
}

/// UID kinds, mixed into the UID hash so that the study, series, ... UIDs of one seed all differ.
const KIND_STUDY: u64 = 1;
const KIND_FRAME_OF_REFERENCE: u64 = 2;
const KIND_SERIES: u64 = 3;
const KIND_SOP_INSTANCE: u64 = 4;
const KIND_FILE_NAME: u64 = 5;

/// Largest accepted slice, in pixels (8192 x 8192): keeps an encoded frame far below the 4 GiB that RLE segment
/// offsets and fragment lengths (u32) can address.
const MAX_PIXELS_PER_SLICE: u64 = 1 << 26;

/// Largest accepted coordinate magnitude, mm; keeps every derived position finite and printable as DS.
const MAX_COORDINATE_MM: f64 = 1.0e6;

impl SeriesSpec {
    /// An axial series (IOP `[1,0,0,0,1,0]`) of `columns x rows x slices`, square pixels of `pixel_spacing_mm`,
    /// slices every `slice_spacing_mm` (thickness the same), centred on the patient origin, signed 16-bit,
    /// Explicit VR Little Endian, ordered names. Use [`SeriesSpec::centered_on`] to move it.
    pub fn axial(columns: u16, rows: u16, slices: usize, pixel_spacing_mm: f64, slice_spacing_mm: f64) -> Self {
        SeriesSpec {
            columns,
            rows,
            pixel_spacing_mm: [pixel_spacing_mm, pixel_spacing_mm],
            slices: SliceLayout::Even {
                count: slices,
                spacing_mm: slice_spacing_mm,
            },
            thickness: SliceThickness::Uniform {
                thickness_mm: slice_spacing_mm.abs(),
            },
            row_direction: [1.0, 0.0, 0.0],
            column_direction: [0.0, 1.0, 0.0],
            gantry_tilt_deg: 0.0,
            origin_mm: [0.0; 3],
            uid_seed: 1,
            series_number: 1,
            series_description: "guidesmith synthetic CT".to_string(),
            compression: Compression::ExplicitVrLittleEndian,
            pixel_format: PixelFormat::SIGNED_16,
            file_naming: FileNaming::Ordered,
            instance_order: InstanceOrder::Increasing,
        }
        .centered_on([0.0; 3])
    }

    /// Moves `origin_mm` so that the centre of the imaged block (middle of the in-plane field of the middle
    /// slice offset) lands on `center_mm`, with the current orientation, tilt and slice offsets.
    pub fn centered_on(mut self, center_mm: [f64; 3]) -> Self {
        let (row, col, _, stack) = self.directions();
        let offsets = self.slices.offsets_mm();
        let finite = offsets.iter().copied().filter(|o| o.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        let mid = if lo <= hi { 0.5 * (lo + hi) } else { 0.0 };
        let half_u = 0.5 * f64::from(self.columns.saturating_sub(1)) * self.pixel_spacing_mm[1];
        let half_v = 0.5 * f64::from(self.rows.saturating_sub(1)) * self.pixel_spacing_mm[0];
        let origin = Vector3::from(center_mm) - row * half_u - col * half_v - stack * mid;
        self.origin_mm = origin.into();
        self
    }

    /// Row direction, tilted column direction, tilted normal and stacking direction (not validated).
    fn directions(&self) -> (Vector3<f64>, Vector3<f64>, Vector3<f64>, Vector3<f64>) {
        let row = Vector3::from(self.row_direction);
        let col = Vector3::from(self.column_direction);
        let stack = row.cross(&col);
        let (sin_t, cos_t) = self.gantry_tilt_deg.to_radians().sin_cos();
        let tilted_col = col * cos_t - stack * sin_t;
        let normal = row.cross(&tilted_col);
        (row, tilted_col, normal, stack)
    }

    /// Study Instance UID (depends on `uid_seed` only).
    pub fn study_instance_uid(&self) -> String {
        derive_uid(self.uid_seed, &[KIND_STUDY])
    }

    /// Frame of Reference UID (depends on `uid_seed` only).
    pub fn frame_of_reference_uid(&self) -> String {
        derive_uid(self.uid_seed, &[KIND_FRAME_OF_REFERENCE])
    }

    /// Series Instance UID (from `uid_seed` and `series_number`).
    pub fn series_instance_uid(&self) -> String {
        derive_uid(self.uid_seed, &[KIND_SERIES, u64::from(self.series_number)])
    }

    /// SOP Instance UID of slice `slice` (in `SliceLayout` order).
    pub fn sop_instance_uid(&self, slice: usize) -> String {
        derive_uid(
            self.uid_seed,
            &[KIND_SOP_INSTANCE, u64::from(self.series_number), slice as u64],
        )
    }

    /// File name of slice `slice` with instance number `instance_number`.
    pub fn file_name(&self, slice: usize, instance_number: u32) -> String {
        match self.file_naming {
            FileNaming::Ordered => {
                format!("s{:03}_i{:05}.dcm", self.series_number, instance_number)
            }
            FileNaming::Shuffled => format!(
                "{:016x}",
                hash_words(&[
                    self.uid_seed,
                    KIND_FILE_NAME,
                    u64::from(self.series_number),
                    slice as u64
                ])
            ),
        }
    }

    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |field: &'static str, reason: String| Err(SynthError::InvalidSpec { field, reason });
        if self.columns == 0 || self.rows == 0 {
            return bad(
                "columns/rows",
                format!("must be >= 1, got {}x{}", self.columns, self.rows),
            );
        }
        let pixels = u64::from(self.columns) * u64::from(self.rows);
        if pixels > MAX_PIXELS_PER_SLICE {
            return bad(
                "columns/rows",
                format!(
                    "{}x{} pixels per slice exceed the supported {MAX_PIXELS_PER_SLICE}",
                    self.columns, self.rows
                ),
            );
        }
        for s in self.pixel_spacing_mm {
            if !(s.is_finite() && s > 0.0 && s <= 1000.0) {
                return bad(
                    "pixel_spacing_mm",
                    format!("must be in (0, 1000], got {:?}", self.pixel_spacing_mm),
                );
            }
        }
        let count = self.slices.count();
        if count == 0 || count > 100_000 {
            return bad("slices", format!("need 1 to 100000 slices, got {count}"));
        }
        match &self.slices {
            SliceLayout::Even { spacing_mm, .. } => {
                if !(spacing_mm.is_finite() && *spacing_mm != 0.0 && spacing_mm.abs() <= 1000.0) {
                    return bad(
                        "slices.spacing_mm",
                        format!("must be non-zero with |spacing| <= 1000, got {spacing_mm}"),
                    );
                }
            }
            SliceLayout::Offsets { offsets_mm } => {
                if let Some(o) = offsets_mm
                    .iter()
                    .find(|o| !(o.is_finite() && o.abs() <= MAX_COORDINATE_MM))
                {
                    return bad(
                        "slices.offsets_mm",
                        format!("offsets must be finite and within 1e6 mm, got {o}"),
                    );
                }
            }
        }
        let thickness_ok = |t: f64| t.is_finite() && t > 0.0 && t <= 1000.0;
        match &self.thickness {
            SliceThickness::Uniform { thickness_mm } => {
                if !thickness_ok(*thickness_mm) {
                    return bad("thickness", format!("must be in (0, 1000] mm, got {thickness_mm}"));
                }
            }
            SliceThickness::PerSlice { thickness_mm } => {
                if thickness_mm.len() != count {
                    return bad(
                        "thickness",
                        format!("{} thicknesses for {count} slices", thickness_mm.len()),
                    );
                }
                if let Some(t) = thickness_mm.iter().find(|t| !thickness_ok(**t)) {
                    return bad("thickness", format!("must be in (0, 1000] mm, got {t}"));
                }
            }
        }
        let row = Vector3::from(self.row_direction);
        let col = Vector3::from(self.column_direction);
        let unit = |v: &Vector3<f64>| v.iter().all(|c| c.is_finite()) && (v.norm() - 1.0).abs() <= 1e-6;
        if !(unit(&row) && unit(&col) && row.dot(&col).abs() <= 1e-6) {
            return bad(
                "row_direction/column_direction",
                format!(
                    "must be orthogonal unit vectors (within 1e-6), got {:?} and {:?}",
                    self.row_direction, self.column_direction
                ),
            );
        }
        if !(self.gantry_tilt_deg.is_finite() && self.gantry_tilt_deg.abs() < 60.0) {
            return bad(
                "gantry_tilt_deg",
                format!("must be within +-60 degrees, got {}", self.gantry_tilt_deg),
            );
        }
        if !self
            .origin_mm
            .iter()
            .all(|c| c.is_finite() && c.abs() <= MAX_COORDINATE_MM)
        {
            return bad(
                "origin_mm",
                format!("must be finite and within 1e6 mm, got {:?}", self.origin_mm),
            );
        }
        if self.series_number > i32::MAX as u32 {
            return bad(
                "series_number",
                format!("must fit an IS value (<= 2^31-1), got {}", self.series_number),
            );
        }
        let d = &self.series_description;
        if d.chars().count() > 64 || d.chars().any(|c| c == '\\' || c.is_control()) {
            return bad(
                "series_description",
                format!("at most 64 characters, no backslash or control character: {d:?}"),
            );
        }
        self.pixel_format.validate()
    }

    /// The geometry exactly as it will be written; see [`SeriesLayout`].
    pub fn layout(&self) -> Result<SeriesLayout, SynthError> {
        self.validate()?;
        let (row, col, _, stack) = self.directions();
        let q3 = |v: Vector3<f64>| -> Result<[f64; 3], SynthError> {
            Ok([quantize_ds(v.x)?, quantize_ds(v.y)?, quantize_ds(v.z)?])
        };
        let row_q = q3(row)?;
        let col_q = q3(col)?;
        let normal = Vector3::from(row_q).cross(&Vector3::from(col_q)).normalize();
        let spacing_q = [
            quantize_ds(self.pixel_spacing_mm[0])?,
            quantize_ds(self.pixel_spacing_mm[1])?,
        ];
        let tilt_q = quantize_ds(self.gantry_tilt_deg)?;
        let offsets = self.slices.offsets_mm();
        let count = offsets.len();
        let origin = Vector3::from(self.origin_mm);
        let mut slices = Vec::with_capacity(count);
        for (s, &offset_mm) in offsets.iter().enumerate() {
            let position_mm = q3(origin + stack * offset_mm)?;
            let thickness_mm = match &self.thickness {
                SliceThickness::Uniform { thickness_mm } => *thickness_mm,
                SliceThickness::PerSlice { thickness_mm } => thickness_mm.get(s).copied().unwrap_or(f64::NAN),
            };
            let instance_number = match self.instance_order {
                InstanceOrder::Increasing => s + 1,
                InstanceOrder::Decreasing => count - s,
            } as u32;
            slices.push(SlicePlacement {
                position_mm,
                offset_mm,
                thickness_mm: quantize_ds(thickness_mm)?,
                slice_location_mm: quantize_ds(Vector3::from(position_mm).dot(&normal))?,
                instance_number,
            });
        }

        // The grid a loader should produce: only for untilted, distinct, evenly spaced slices.
        let mut order: Vec<usize> = (0..count).collect();
        let along = |s: usize| Vector3::from(slices[s].position_mm).dot(&normal);
        order.sort_by(|&a, &b| along(a).total_cmp(&along(b)).then(a.cmp(&b)));
        let steps: Vec<f64> = order.windows(2).map(|w| along(w[1]) - along(w[0])).collect();
        let mean_step = if steps.is_empty() {
            slices.first().map_or(1.0, |s| s.thickness_mm)
        } else {
            steps.iter().sum::<f64>() / steps.len() as f64
        };
        let even = steps
            .iter()
            .all(|d| *d > 1e-6 && (d - mean_step).abs() <= 1e-6 * mean_step.max(1.0));
        let geometry = if tilt_q == 0.0 && even {
            let first = slices[order[0]].position_mm;
            Some(GridGeometry {
                dims: [usize::from(self.columns), usize::from(self.rows), count],
                spacing_mm: [spacing_q[1], spacing_q[0], mean_step],
                origin_mm: first,
                axes: [row_q, col_q, normal.into()],
            })
        } else {
            None
        };
        let volume_slice_order = if geometry.is_some() {
            order
        } else {
            (0..count).collect()
        };
        Ok(SeriesLayout {
            row_direction: row_q,
            column_direction: col_q,
            normal: normal.into(),
            stack_direction: stack.into(),
            pixel_spacing_mm: spacing_q,
            gantry_tilt_deg: tilt_q,
            slices,
            geometry,
            volume_slice_order,
        })
    }
}

/// Formats `value` as a DICOM Decimal String (VR DS): at most 16 characters, the closest such decimal to
/// `value`, shortest round-trip form when it fits. `None` for a non-finite value.
pub fn format_ds(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let value = if value == 0.0 { 0.0 } else { value }; // no "-0"
    let plain = format!("{value}");
    if plain.len() <= 16 {
        return Some(plain);
    }
    let mut candidates = Vec::new();
    if let Some(fixed) = (0..=16usize)
        .rev()
        .map(|d| format!("{value:.d$}"))
        .find(|s| s.len() <= 16)
    {
        candidates.push(fixed);
    }
    if let Some(sci) = (0..=16usize)
        .rev()
        .map(|p| format!("{value:.p$e}"))
        .find(|s| s.len() <= 16)
    {
        candidates.push(sci);
    }
    candidates
        .into_iter()
        .filter_map(|s| s.parse::<f64>().ok().map(|v| ((v - value).abs(), s)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, s)| s)
}

/// `value` rounded to what [`format_ds`] writes.
pub(crate) fn quantize_ds(value: f64) -> Result<f64, SynthError> {
    format_ds(value)
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| SynthError::InvalidSpec {
            field: "geometry",
            reason: format!("value {value} cannot be written as a decimal string"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_fit_and_round_trip_when_possible() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1024.0,
            0.5,
            0.488281,
            -123.456,
            1e-20,
            -3.5e30,
            std::f64::consts::PI,
            (18.5f64).to_radians().cos(),
            -99999.99999999999,
        ] {
            let s = format_ds(v).expect("finite");
            assert!(s.len() <= 16, "{s}");
            assert!(s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)), "{s}");
            let back: f64 = s.parse().expect("parse");
            assert!((back - v).abs() <= 1e-13 * v.abs().max(1.0), "{v} -> {s}");
        }
        assert_eq!(format_ds(-0.0).as_deref(), Some("0"));
        assert_eq!(format_ds(0.5).as_deref(), Some("0.5"));
        assert!(format_ds(f64::NAN).is_none());
    }

    #[test]
    fn axial_layout_and_geometry() {
        let spec = SeriesSpec::axial(8, 6, 5, 0.5, 1.25).centered_on([10.0, 20.0, 30.0]);
        let layout = spec.layout().expect("layout");
        assert_eq!(layout.row_direction, [1.0, 0.0, 0.0]);
        assert_eq!(layout.column_direction, [0.0, 1.0, 0.0]);
        assert_eq!(layout.slices.len(), 5);
        assert_eq!(layout.slices[0].position_mm, [8.25, 18.75, 27.5]);
        assert_eq!(layout.slices[4].position_mm, [8.25, 18.75, 32.5]);
        let g = layout.geometry.clone().expect("even axial series has a grid");
        assert_eq!(g.dims, [8, 6, 5]);
        assert_eq!(g.spacing_mm, [0.5, 0.5, 1.25]);
        assert_eq!(g.origin_mm, [8.25, 18.75, 27.5]);
        assert_eq!(layout.volume_slice_order, vec![0, 1, 2, 3, 4]);
        let p = g.to_patient([3.0, 2.0, 4.0]);
        let q = layout.pixel_position_mm(4, 3, 2);
        assert!((p - nalgebra::Point3::from(q)).norm() < 1e-12);
    }

    #[test]
    fn reversed_stack_sorts_the_grid() {
        let mut spec = SeriesSpec::axial(4, 4, 3, 1.0, -2.0);
        spec.instance_order = InstanceOrder::Decreasing;
        let layout = spec.layout().expect("layout");
        assert_eq!(layout.volume_slice_order, vec![2, 1, 0]);
        let g = layout.geometry.expect("grid");
        assert_eq!(g.spacing_mm[2], 2.0);
        assert_eq!(g.origin_mm, layout.slices[2].position_mm);
        assert_eq!(layout.slices[0].instance_number, 3);
        assert_eq!(layout.slices[2].instance_number, 1);
    }

    #[test]
    fn uneven_or_tilted_series_have_no_grid() {
        let mut spec = SeriesSpec::axial(4, 4, 3, 1.0, 1.0);
        spec.slices = SliceLayout::Offsets {
            offsets_mm: vec![0.0, 1.0, 3.0],
        };
        assert!(spec.layout().expect("layout").geometry.is_none());
        let mut spec = SeriesSpec::axial(4, 4, 3, 1.0, 1.0);
        spec.gantry_tilt_deg = 15.0;
        let layout = spec.layout().expect("layout");
        assert!(layout.geometry.is_none());
        let (s, c) = 15f64.to_radians().sin_cos();
        assert!((layout.column_direction[1] - c).abs() < 1e-13);
        assert!((layout.column_direction[2] + s).abs() < 1e-13);
        // Slices step along z (the table), not along the tilted normal.
        let d: Vec<f64> = (0..3)
            .map(|k| layout.slices[1].position_mm[k] - layout.slices[0].position_mm[k])
            .collect();
        assert!(d[0].abs() < 1e-12 && d[1].abs() < 1e-12 && (d[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn validation_rejects_bad_fields() {
        let spec = SeriesSpec {
            column_direction: [0.0, 1.0, 0.1],
            ..SeriesSpec::default()
        };
        assert!(matches!(
            spec.validate(),
            Err(SynthError::InvalidSpec { field, .. }) if field.contains("direction")
        ));
        let spec = SeriesSpec {
            thickness: SliceThickness::PerSlice {
                thickness_mm: vec![1.0; 3],
            },
            ..SeriesSpec::default()
        };
        assert!(spec.validate().is_err());
        let mut spec = SeriesSpec::default();
        spec.pixel_format.bits_stored = 14;
        assert!(spec.validate().is_err());
        let spec = SeriesSpec {
            series_description: "a\\b".to_string(),
            ..SeriesSpec::default()
        };
        assert!(spec.validate().is_err());
        assert!(SeriesSpec::default().validate().is_ok());
    }

    #[test]
    fn pixel_formats_store_and_restore_hu() {
        for format in [
            PixelFormat::SIGNED_16,
            PixelFormat::UNSIGNED_16_OFFSET,
            PixelFormat::SIGNED_12,
            PixelFormat::UNSIGNED_12_OFFSET,
        ] {
            for hu in [-1000i16, -1024, 0, 40, 400, 1500, 2047] {
                let stored = format.stored_from_hu(hu);
                let (lo, hi) = format.stored_range();
                assert!(stored >= lo && stored <= hi);
                assert_eq!(format.hu_from_stored(stored), i32::from(hu), "{format:?} {hu}");
            }
        }
        assert_eq!(PixelFormat::SIGNED_12.stored_from_hu(3000), 2047);
        assert_eq!(PixelFormat::UNSIGNED_12_OFFSET.stored_from_hu(-2000), 0);
        assert_eq!(PixelFormat::SIGNED_16.word(-1), 0xFFFF);
    }

    #[test]
    fn spec_round_trips_through_serde() {
        let mut spec = SeriesSpec::axial(16, 12, 4, 0.7, 1.5);
        spec.slices = SliceLayout::Offsets {
            offsets_mm: vec![0.0, 1.5, 4.5, 6.0],
        };
        spec.compression = Compression::RleLossless;
        let text = serde_json::to_string(&spec).expect("serialise");
        let back: SeriesSpec = serde_json::from_str(&text).expect("deserialise");
        let again = serde_json::to_value(&back).expect("serialise");
        let original = serde_json::to_value(&spec).expect("serialise");
        crate::synth::assert_json_close(&again, &original);
        assert_eq!(back.compression, Compression::RleLossless);
        // Missing fields take their defaults.
        let partial: SeriesSpec =
            serde_json::from_str(r#"{"columns": 32, "compression": "JpegLsLossless"}"#).expect("partial");
        assert_eq!(partial.columns, 32);
        assert_eq!(partial.rows, SeriesSpec::default().rows);
    }
}
