//! Errors of the series loader.
//!
//! Each variant carries what a user needs to act: the file or slices concerned and the values found. Problems with
//! one file among many are not errors of the load (they become `SkippedFile` entries); these errors are what stops
//! a whole load.

use std::path::PathBuf;

use thiserror::Error;

/// Why a series could not be loaded.
#[derive(Debug, Error)]
pub enum VolumeError {
    /// The input path does not exist or cannot be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Nothing in the input is a usable DICOM image.
    #[error("no DICOM image series found in {path} ({files} files tried, {skipped} skipped){reasons}")]
    NoSeries {
        /// The input path.
        path: PathBuf,
        /// Number of files tried.
        files: usize,
        /// Number of files skipped.
        skipped: usize,
        /// The first skip reasons, formatted for the message.
        reasons: String,
    },
    /// The series named with `--series` does not exist.
    #[error("no series matches {selector:?}; available: {available}")]
    SeriesNotFound {
        /// What the user asked for.
        selector: String,
        /// The series found, as `number uid` pairs.
        available: String,
    },
    /// The selector matched more than one series.
    #[error("{selector:?} matches {count} series; name it by SeriesInstanceUID instead: {available}")]
    AmbiguousSeries {
        /// What the user asked for.
        selector: String,
        /// How many series matched.
        count: usize,
        /// The matching series UIDs.
        available: String,
    },
    /// The slices of one series cannot form a volume.
    #[error("series {series}: {reason}")]
    Inconsistent {
        /// The series label (number and UID).
        series: String,
        /// What is inconsistent, naming slices and values.
        reason: String,
    },
    /// Pixel data of a slice cannot be decoded.
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A load option has a value that cannot be used.
    #[error("{option}: {reason}")]
    BadOption {
        /// The option.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The volume would not fit in memory or in the index types.
    #[error("series {series}: volume of {voxels} voxels is too large")]
    TooLarge {
        /// The series label.
        series: String,
        /// The number of voxels requested.
        voxels: u128,
    },
    /// The front end cancelled the load.
    #[error(transparent)]
    Cancelled(#[from] crate::progress::Cancelled),
}
