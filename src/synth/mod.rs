//! Synthetic CT series with known geometry, for tests, benchmarks and the demo.
//!
//! Why this exists: every later stage of guidesmith (loading, segmentation, meshing, guide design) must be checked
//! against a ground truth, and real patient scans have none (and may not be committed anywhere). This module
//! writes *real* DICOM CT series, file by file, of shapes whose surfaces are known analytically, so a test can
//! load the files through the production loader and measure how far the result is from the true surface in mm.
//!
//! The pieces:
//! - [`Phantom`] (in `phantom`): painter-style layers of analytic shapes ([`Shape`]) with CT-like HU values, a
//!   linear partial-volume ramp across each surface and deterministic Gaussian noise. Its iso-surface at the
//!   midpoint HU between two layers *is* the analytic surface, and [`Phantom::sdf`] gives the signed distance to
//!   each named surface, so errors can be measured in mm.
//! - [`SeriesSpec`] (in `spec`): how the series is acquired: matrix, spacings, uneven or missing slices, changing
//!   slice thickness, oblique orientation, GE-style gantry tilt, stored pixel format, transfer syntax and file
//!   naming. Everything that goes into the files is derived from it deterministically, UIDs included.
//! - [`write_series`] (in `write`): samples the phantom slice by slice in parallel and writes one CT Image
//!   Storage file per slice, atomically, returning what a correct loader must find ([`WrittenSeries`]).
//! - `rle`: a DICOM RLE Lossless (PS3.5 Annex G) encoder, because dicom-rs only decodes RLE.
//!
//! Determinism is a design rule: noise comes from a counter-based hash of (seed, voxel index), UIDs and shuffled
//! file names from a hash of the seeds, and nothing reads the clock, so the same inputs give byte-identical files
//! whatever the number of threads.

mod encode;
mod hash;
mod phantom;
mod rle;
mod sdf;
mod spec;
mod write;

use std::path::PathBuf;

use thiserror::Error;

pub use hash::{derive_uid, gaussian, splitmix64, UID_ROOT};
pub use phantom::{JawParams, Layer, Noise, Phantom, DEFAULT_EDGE_WIDTH_MM, JAW_BONE, JAW_MARROW, JAW_SOFT_TISSUE};
pub use rle::{encode_rle_frame, packbits_encode_row};
pub use sdf::{ellipse_sdf, Horseshoe, Shape};
pub use spec::{
    format_ds, Compression, FileNaming, InstanceOrder, PixelFormat, SeriesLayout, SeriesSpec, SliceLayout,
    SlicePlacement, SliceThickness,
};
pub use write::{
    write_series, write_series_with, WriteOptions, WrittenSeries, WrittenSlice, CT_IMAGE_STORAGE_SOP_CLASS_UID,
    SYNTHETIC_PATIENT_ID, SYNTHETIC_PATIENT_NAME,
};

/// Why a phantom could not be evaluated or a series could not be written.
#[derive(Debug, Error)]
pub enum SynthError {
    /// A phantom parameter is out of its valid range (non-finite, negative radius, duplicate layer name...).
    #[error("invalid phantom: {0}")]
    InvalidPhantom(String),
    /// A series parameter is out of its valid range.
    #[error("invalid series spec, {field}: {reason}")]
    InvalidSpec {
        /// The `SeriesSpec` field concerned.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// `Phantom::sdf` was asked for a layer that does not exist.
    #[error("the phantom has no surface named {name:?} (known: {known})")]
    UnknownSurface {
        /// The name asked for.
        name: String,
        /// The layer names of the phantom, comma separated.
        known: String,
    },
    /// A file or directory could not be created, written or renamed.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// dicom-rs refused to build or serialise the data set of a slice.
    #[error("cannot build the DICOM file for slice {slice}: {reason}")]
    Dicom {
        /// Slice index in `SeriesSpec` order.
        slice: usize,
        /// The dicom-rs error, as text (its error types carry backtraces and are not all `Sync`).
        reason: String,
    },
    /// The pixel data of a slice could not be compressed.
    #[error("cannot encode slice {slice} as {compression:?}: {reason}")]
    Encode {
        /// Slice index in `SeriesSpec` order.
        slice: usize,
        /// The transfer syntax requested.
        compression: Compression,
        /// What the encoder reported.
        reason: String,
    },
}

/// Test helper: two serde_json values are equal up to a relative 1e-14 on numbers (serde_json without its
/// `float_roundtrip` feature may parse a float one ulp off).
#[cfg(test)]
pub(crate) fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            assert!((x - y).abs() <= 1e-14 * x.abs().max(1.0), "{x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            for (x, y) in x.iter().zip(y) {
                assert_json_close(x, y);
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len());
            for (key, x) in x {
                let y = y.get(key).unwrap_or(&Value::Null);
                assert_json_close(x, y);
            }
        }
        _ => assert_eq!(a, b),
    }
}
