//! CT series on disk to a volume in Hounsfield units, in DICOM patient coordinates (LPS, mm).
//!
//! This is the first stage of the pipeline, and every later stage trusts its output, so it is strict about geometry
//! and lenient about files:
//! - Every file under the input is tried. What is not a usable image is skipped and listed with the reason, and the
//!   load goes on (`SkippedFile`).
//! - Slices are grouped into series by SeriesInstanceUID, or, where that is empty, by FrameOfReferenceUID,
//!   orientation and matrix size.
//! - Within a series, order and spacing come from ImagePositionPatient alone (`assemble`). Tilt and uneven spacing
//!   are resampled onto a regular grid and reported; what cannot form one volume is refused with the slices named.
//! - Loading is two passes: headers only (cheap, parallel), then pixel data decoded in parallel straight into the
//!   output planes, so peak memory stays close to the size of the volume.
//!
//! The `Volume` keeps HU samples, the grid geometry and a non-identifying description of the series. Nothing that
//! names the patient, or dates the study, is read into any type of this module.

mod assemble;
mod decode;
mod error;
mod header;
mod hounsfield;
mod lengths;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

pub use assemble::{plan_grid, slice_label, GridPlan};
pub use decode::decode_single;
pub use error::VolumeError;
pub use header::{read_header, transfer_syntax_name, SkipReason, SliceHeader};
pub use hounsfield::{NotHounsfield, AIR_FLOOR_MAX_HU, FLOOR_MIN_SHARE};
pub use lengths::LengthError;

use crate::grid::GridGeometry;
use crate::progress::Progress;

/// A CT volume: HU samples on a regular grid in patient space.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Placement of the samples in patient space.
    pub geometry: GridGeometry,
    /// Hounsfield units, `geometry.index(i, j, k)` order.
    pub hu: Vec<i16>,
    /// What the series is, without anything that identifies the patient.
    pub series: SeriesInfo,
}

/// Summary statistics of a volume's HU values.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HuStats {
    /// Smallest HU value.
    pub min_hu: i16,
    /// Largest HU value.
    pub max_hu: i16,
    /// Mean HU value.
    pub mean_hu: f64,
    /// Voxels at or above 226 HU (InVesalius' bone threshold).
    pub voxels_at_or_above_226_hu: u64,
}

impl Volume {
    /// HU statistics, computed in parallel.
    pub fn stats(&self) -> HuStats {
        let (min, max, sum, bone) = self
            .hu
            .par_chunks(1 << 16)
            .map(|c| {
                let mut mn = i16::MAX;
                let mut mx = i16::MIN;
                let mut s = 0i64;
                let mut b = 0u64;
                for &v in c {
                    mn = mn.min(v);
                    mx = mx.max(v);
                    s += i64::from(v);
                    b += u64::from(v >= 226);
                }
                (mn, mx, s, b)
            })
            .reduce(
                || (i16::MAX, i16::MIN, 0i64, 0u64),
                |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 + b.2, a.3 + b.3),
            );
        HuStats {
            min_hu: min,
            max_hu: max,
            mean_hu: if self.hu.is_empty() {
                0.0
            } else {
                sum as f64 / self.hu.len() as f64
            },
            voxels_at_or_above_226_hu: bone,
        }
    }

    /// HU at integer voxel `(i, j, k)`.
    pub fn at(&self, i: usize, j: usize, k: usize) -> i16 {
        self.hu[self.geometry.index(i, j, k)]
    }
}

/// A file that did not contribute to any series, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// The non-identifying description of a series, as listed by `guidesmith info`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SeriesInfo {
    /// SeriesInstanceUID (empty when the files have none).
    pub series_uid: String,
    /// SeriesNumber.
    pub series_number: Option<i64>,
    /// SeriesDescription.
    pub description: String,
    /// Modality.
    pub modality: String,
    /// Scanner manufacturer and model.
    pub scanner: String,
    /// Reconstruction kernel.
    pub kernel: String,
    /// Number of slices (frames).
    pub slices: usize,
    /// Columns x rows.
    pub matrix: [u32; 2],
    /// PixelSpacing (row spacing, column spacing) in mm.
    pub pixel_spacing_mm: [f64; 2],
    /// Median gap between slices along the normal, in mm.
    pub slice_spacing_mm: Option<f64>,
    /// Distinct SliceThickness values in mm, in slice order.
    pub thickness_mm: Vec<f64>,
    /// Transfer syntaxes found in the series.
    pub transfer_syntaxes: Vec<String>,
    /// Angle between the stacking direction and the slice normal, in degrees.
    pub tilt_deg: f64,
    /// Whether loading resamples the slices onto a regular grid.
    pub resampled: bool,
    /// Facts a user should know, and why a series cannot be loaded if it cannot.
    pub warnings: Vec<String>,
    /// Set on a loaded CT whose values cannot be Hounsfield units (also one of `warnings`, as text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_hounsfield: Option<NotHounsfield>,
    /// Why the series cannot be loaded, if it cannot.
    pub error: Option<String>,
}

impl SeriesInfo {
    /// `number uid` label used in messages.
    pub fn label(&self) -> String {
        let number = self.series_number.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let uid = if self.series_uid.is_empty() {
            "(no SeriesInstanceUID)"
        } else {
            &self.series_uid
        };
        format!("#{number} {uid}")
    }
}

/// One series found in the input: its slices (unsorted) and its plan.
#[derive(Clone, Debug)]
pub struct Series {
    /// The description shown to users.
    pub info: SeriesInfo,
    /// The slices, in the order they were found.
    pub slices: Vec<SliceHeader>,
    plan: Result<GridPlan, String>,
}

impl Series {
    /// The grid plan, or why there is none.
    pub fn plan(&self) -> Result<&GridPlan, &str> {
        self.plan.as_ref().map_err(String::as_str)
    }
}

/// Everything found in an input path: the series and the skipped files.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The input path.
    pub input: PathBuf,
    /// Number of files tried.
    pub files_tried: usize,
    /// Series, CT first, then by number of slices (descending), then by UID.
    pub series: Vec<Series>,
    /// Files that are not part of any series, with the reason.
    pub skipped: Vec<SkippedFile>,
}

/// List the files of an input: a folder (recursively, sorted), a DICOMDIR (the files it references), or one file.
fn collect_files(input: &Path, skipped: &mut Vec<SkippedFile>) -> Result<Vec<PathBuf>, VolumeError> {
    let meta = std::fs::metadata(input).map_err(|source| VolumeError::Io {
        path: input.to_path_buf(),
        error: source,
    })?;
    if meta.is_file() {
        if let Some(files) = dicomdir_files(input) {
            return Ok(files);
        }
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                if dir == input {
                    return Err(VolumeError::Io { path: dir, error: e });
                }
                skipped.push(SkippedFile {
                    path: dir,
                    reason: format!("folder cannot be read: {e}"),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => files.push(path),
                Err(e) => skipped.push(SkippedFile {
                    path,
                    reason: format!("cannot stat: {e}"),
                }),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// If `path` is a DICOMDIR, the files it references (relative to its folder), else `None`.
fn dicomdir_files(path: &Path) -> Option<Vec<PathBuf>> {
    use dicom_dictionary_std::tags;
    let obj = header::open_full(path).ok()?;
    let records = obj.get(tags::DIRECTORY_RECORD_SEQUENCE)?.items()?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for record in records {
        if let Some(id) = record.get(tags::REFERENCED_FILE_ID) {
            if let Ok(parts) = id.to_multi_str() {
                let mut p = folder.to_path_buf();
                for part in parts.iter() {
                    p.push(part.trim());
                }
                files.push(p);
            }
        }
    }
    files.sort();
    files.dedup();
    Some(files)
}

/// Grouping key: SeriesInstanceUID, or frame of reference + orientation + matrix where the UID is empty.
fn series_key(h: &SliceHeader) -> String {
    if !h.series_uid.is_empty() {
        return format!("uid:{}", h.series_uid);
    }
    let o: Vec<String> = h.orientation.iter().map(|x| format!("{x:.4}")).collect();
    format!(
        "for:{}|{}|{}x{}",
        h.frame_of_reference_uid,
        o.join(","),
        h.columns,
        h.rows
    )
}

/// A file and what its header pass gave.
type HeaderResult = (PathBuf, Result<Vec<SliceHeader>, SkipReason>);

/// Read the headers of every file under `input` and group the images into series.
pub fn scan(input: &Path, progress: &dyn Progress) -> Result<Scan, VolumeError> {
    let mut skipped = Vec::new();
    let files = collect_files(input, &mut skipped)?;
    progress.begin("reading headers", files.len() as u64);
    // A file after a cancel is not read (`None`); the cancel is reported once all workers have stopped.
    let results: Vec<Option<HeaderResult>> = files
        .par_iter()
        .map(|f| {
            if progress.is_cancelled() {
                return None;
            }
            let r = header::read_header(f);
            progress.advance(1);
            Some((f.clone(), r))
        })
        .collect();
    progress.end();
    progress.checkpoint()?;
    let mut groups: BTreeMap<String, Vec<SliceHeader>> = BTreeMap::new();
    for (path, result) in results.into_iter().flatten() {
        match result {
            Ok(headers) => {
                for h in headers {
                    groups.entry(series_key(&h)).or_default().push(h);
                }
            }
            Err(reason) => skipped.push(SkippedFile {
                path,
                reason: reason.to_string(),
            }),
        }
    }
    let mut series: Vec<Series> = groups.into_values().map(build_series).collect();
    series.sort_by(|a, b| {
        let ct = |s: &Series| u8::from(s.info.modality != "CT");
        ct(a)
            .cmp(&ct(b))
            .then(b.info.slices.cmp(&a.info.slices))
            .then(a.info.series_uid.cmp(&b.info.series_uid))
    });
    Ok(Scan {
        input: input.to_path_buf(),
        files_tried: files.len(),
        series,
        skipped,
    })
}

fn build_series(slices: Vec<SliceHeader>) -> Series {
    let plan = plan_grid(&slices);
    let first = &slices[0];
    let mut transfer_syntaxes: Vec<String> = slices
        .iter()
        .map(|s| transfer_syntax_name(&s.transfer_syntax_uid))
        .collect();
    transfer_syntaxes.sort();
    transfer_syntaxes.dedup();
    let mut warnings = Vec::new();
    let mut notes: Vec<&str> = slices.iter().filter_map(|s| s.note.as_deref()).collect();
    notes.sort();
    notes.dedup();
    warnings.extend(notes.iter().map(|n| n.to_string()));
    if first.modality != "CT" {
        warnings.push(format!(
            "modality {}: values are the rescaled stored values, not Hounsfield units",
            if first.modality.is_empty() {
                "unknown"
            } else {
                &first.modality
            }
        ));
    }
    let (thickness, tilt, resampled, median_gap, error) = match &plan {
        Ok(p) => {
            warnings.extend(p.warnings.iter().cloned());
            let mut t: Vec<f64> = Vec::new();
            for &i in &p.order {
                if let Some(v) = slices[i].thickness_mm {
                    if t.last().is_none_or(|l| (l - v).abs() > 1e-6) && !t.iter().any(|x| (x - v).abs() < 1e-6) {
                        t.push(v);
                    }
                }
            }
            (t, p.tilt_deg, p.resample, p.median_gap_mm, None)
        }
        Err(e) => (Vec::new(), 0.0, false, None, Some(e.clone())),
    };
    let scanner = [first.manufacturer.as_str(), first.model.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let info = SeriesInfo {
        series_uid: first.series_uid.clone(),
        series_number: first.series_number,
        description: first.series_description.clone(),
        modality: first.modality.clone(),
        scanner,
        kernel: first.kernel.clone(),
        slices: slices.len(),
        matrix: [first.columns, first.rows],
        pixel_spacing_mm: first.pixel_spacing_mm,
        slice_spacing_mm: median_gap,
        thickness_mm: thickness,
        transfer_syntaxes,
        tilt_deg: tilt,
        resampled,
        warnings,
        not_hounsfield: None,
        error,
    };
    Series { info, slices, plan }
}

impl Scan {
    /// Choose a series: by SeriesInstanceUID or SeriesNumber, else the CT series with the most slices.
    pub fn select(&self, selector: Option<&str>) -> Result<&Series, VolumeError> {
        let available = || {
            self.series
                .iter()
                .map(|s| s.info.label())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.series.is_empty() {
            return Err(VolumeError::NoSeries {
                path: self.input.clone(),
                files: self.files_tried,
                skipped: self.skipped.len(),
                reasons: skipped_summary(&self.skipped),
            });
        }
        let Some(sel) = selector else {
            // series are sorted CT first, most slices first; prefer one that can be loaded
            return Ok(self.series.iter().find(|s| s.plan.is_ok()).unwrap_or(&self.series[0]));
        };
        let by_uid: Vec<&Series> = self.series.iter().filter(|s| s.info.series_uid == sel).collect();
        if by_uid.len() == 1 {
            return Ok(by_uid[0]);
        }
        let by_number: Vec<&Series> = match sel.parse::<i64>() {
            Ok(n) => self.series.iter().filter(|s| s.info.series_number == Some(n)).collect(),
            Err(_) => Vec::new(),
        };
        match by_number.len() {
            1 => Ok(by_number[0]),
            0 => Err(VolumeError::SeriesNotFound {
                selector: sel.to_string(),
                available: available(),
            }),
            count => Err(VolumeError::AmbiguousSeries {
                selector: sel.to_string(),
                count,
                available: by_number.iter().map(|s| s.info.label()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Load a series of this scan into a volume. Slices whose pixel data turn out damaged are skipped, listed in
    /// `skipped`, and the series is planned again without them.
    pub fn load(&mut self, index: usize, progress: &dyn Progress) -> Result<Volume, VolumeError> {
        self.load_with(index, &LoadOptions::default(), progress)
    }

    /// [`Scan::load`] with options (e.g. a RescaleIntercept given by the user).
    pub fn load_with(
        &mut self,
        index: usize,
        options: &LoadOptions,
        progress: &dyn Progress,
    ) -> Result<Volume, VolumeError> {
        options.validate()?;
        loop {
            let series = &self.series[index];
            let label = series.info.label();
            let plan = series.plan.as_ref().map_err(|e| VolumeError::Inconsistent {
                series: label.clone(),
                reason: e.clone(),
            })?;
            match load_planned(series, plan, options, progress)? {
                Ok(volume) => return Ok(volume),
                Err(bad) => {
                    let series = &mut self.series[index];
                    let mut slices = std::mem::take(&mut series.slices);
                    let failed: Vec<SkippedFile> = bad
                        .into_iter()
                        .map(|(path, reason)| SkippedFile { path, reason })
                        .collect();
                    for f in &failed {
                        slices.retain(|s| *s.path != f.path);
                    }
                    let summary = skipped_summary(&failed);
                    self.skipped.extend(failed);
                    if slices.is_empty() {
                        return Err(VolumeError::Inconsistent {
                            series: label,
                            reason: format!("no slice could be decoded{summary}"),
                        });
                    }
                    self.series[index] = build_series(slices);
                }
            }
        }
    }

    /// Index of a series in `self.series`.
    pub fn index_of(&self, series: &Series) -> usize {
        self.series.iter().position(|s| std::ptr::eq(s, series)).unwrap_or(0)
    }
}

/// The first few skipped files and reasons, as a message suffix (`": a: why; b: why"`).
fn skipped_summary(skipped: &[SkippedFile]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut parts: Vec<String> = skipped
        .iter()
        .take(5)
        .map(|f| format!("{}: {}", f.path.display(), f.reason))
        .collect();
    if skipped.len() > 5 {
        parts.push(format!("and {} more", skipped.len() - 5));
    }
    format!(": {}", parts.join("; "))
}

/// Largest number of samples a series may have (4 G samples = 8 GB of HU); a larger one is refused, not attempted.
const MAX_SAMPLES: usize = 1 << 32;

/// Files that failed to decode, with the reason.
type BadFiles = Vec<(PathBuf, String)>;

/// Decode the slices of a planned series. The inner `Err` lists the files that could not be decoded.
fn load_planned(
    series: &Series,
    plan: &GridPlan,
    options: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Result<Volume, BadFiles>, VolumeError> {
    let label = series.info.label();
    let first = &series.slices[plan.order[0]];
    let (rows, columns) = (first.rows as usize, first.columns as usize);
    let slice_len = rows * columns;
    let n = plan.order.len();
    let stack_len = slice_len
        .checked_mul(n)
        .filter(|&l| l <= MAX_SAMPLES)
        .ok_or(VolumeError::TooLarge {
            series: label.clone(),
            voxels: slice_len as u128 * n as u128,
        })?;
    // Regular series decode straight into the volume; resampled ones into a stack first.
    let mut stack = vec![0i16; stack_len];
    // Group the sorted slices by file so a multi-frame file is opened once.
    let mut by_file: BTreeMap<&Path, Vec<(usize, &SliceHeader)>> = BTreeMap::new();
    for (pos, &i) in plan.order.iter().enumerate() {
        let h = &series.slices[i];
        by_file.entry(h.path.as_path()).or_default().push((pos, h));
    }
    let mut planes: Vec<Option<&mut [i16]>> = stack.chunks_mut(slice_len).map(Some).collect();
    let mut jobs: Vec<(&SliceHeader, Vec<decode::FrameTarget<'_>>)> = Vec::with_capacity(by_file.len());
    for (_, entries) in by_file {
        let header = entries[0].1;
        let mut frames = Vec::with_capacity(entries.len());
        for (pos, h) in entries {
            if let Some(plane) = planes[pos].take() {
                frames.push(decode::FrameTarget {
                    frame: h.frame,
                    slope: h.rescale_slope,
                    intercept: options.rescale_intercept_override.unwrap_or(h.rescale_intercept),
                    out: plane,
                });
            }
        }
        jobs.push((header, frames));
    }
    progress.begin("decoding slices", n as u64);
    let results: Vec<Result<u64, (PathBuf, String)>> = jobs
        .par_iter_mut()
        .map(|(header, frames)| {
            if progress.is_cancelled() {
                return Ok(0);
            }
            let r = decode::decode_file_frames(header, frames)
                .map(|s| s.clamped)
                .map_err(|e| (header.path.to_path_buf(), e));
            progress.advance(frames.len() as u64);
            r
        })
        .collect();
    progress.end();
    drop(jobs);
    progress.checkpoint()?;
    let mut clamped = 0u64;
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(c) => clamped += c,
            Err(e) => bad.push(e),
        }
    }
    if !bad.is_empty() {
        return Ok(Err(bad));
    }
    let mut info = series.info.clone();
    if clamped > 0 {
        info.warnings.push(format!(
            "{clamped} samples fell outside -32768..32767 after rescaling and were clamped"
        ));
    }
    let tags = rescale_tags(&series.slices, options);
    if let Some(intercept) = tags.intercept_override {
        info.warnings.push(format!(
            "RescaleIntercept (0028,1052) replaced by {intercept} as asked (the files say {})",
            if tags.intercept[0] == tags.intercept[1] {
                format!("{}", tags.intercept[0])
            } else {
                format!("{}..{}", tags.intercept[0], tags.intercept[1])
            }
        ));
    }
    // The check runs on the acquired samples (a resampled grid pads with -1024 HU, which would pass for air).
    info.not_hounsfield = hounsfield::check(&info.modality, tags, &stack);
    if let Some(w) = &info.not_hounsfield {
        info.warnings.push(w.to_string());
    }
    let hu = if plan.resample {
        if plan.geometry.len() > MAX_SAMPLES {
            return Err(VolumeError::TooLarge {
                series: label,
                voxels: plan.geometry.len() as u128,
            });
        }
        progress.checkpoint()?;
        progress.begin("resampling", 1);
        let mut out = vec![0i16; plan.geometry.len()];
        assemble::resample_into(plan, rows, columns, &stack, &mut out);
        progress.end();
        out
    } else {
        stack
    };
    Ok(Ok(Volume {
        geometry: plan.geometry.clone(),
        hu,
        series: info,
    }))
}

/// Scan `input`, choose a series (`selector`: UID or number; default: the largest CT series) and load it.
pub fn load(input: &Path, selector: Option<&str>, progress: &dyn Progress) -> Result<(Volume, Scan), VolumeError> {
    load_with(input, selector, &LoadOptions::default(), progress)
}

/// [`load`] with options (e.g. a RescaleIntercept given by the user).
pub fn load_with(
    input: &Path,
    selector: Option<&str>,
    options: &LoadOptions,
    progress: &dyn Progress,
) -> Result<(Volume, Scan), VolumeError> {
    options.validate()?;
    let mut scan = scan(input, progress)?;
    let index = {
        let s = scan.select(selector)?;
        scan.index_of(s)
    };
    let volume = scan.load_with(index, options, progress)?;
    Ok((volume, scan))
}

/// How a series is turned into values, where the files cannot be trusted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// Use this RescaleIntercept (HU) for every slice instead of the files' (0028,1052), e.g. -1024 for a CT
    /// exported with intercept 0 and air stored as 0 (see [`NotHounsfield`]). The files' RescaleSlope still applies.
    pub rescale_intercept_override: Option<f64>,
}

impl LoadOptions {
    /// Largest intercept magnitude accepted: stored values are at most 32 bits, HU fit in `i16`.
    pub const MAX_INTERCEPT_HU: f64 = 65536.0;

    fn validate(&self) -> Result<(), VolumeError> {
        match self.rescale_intercept_override {
            Some(i) if !(i.is_finite() && i.abs() <= Self::MAX_INTERCEPT_HU) => Err(VolumeError::BadOption {
                option: "rescale intercept",
                reason: format!("{i} is not a finite number within +-{}", Self::MAX_INTERCEPT_HU),
            }),
            _ => Ok(()),
        }
    }
}

/// The rescale tags of the slices and the override, for the Hounsfield check.
fn rescale_tags(slices: &[SliceHeader], options: &LoadOptions) -> hounsfield::RescaleTags {
    let span = |f: fn(&SliceHeader) -> f64| {
        slices
            .iter()
            .map(f)
            .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], v| [lo.min(v), hi.max(v)])
    };
    hounsfield::RescaleTags {
        intercept: span(|h| h.rescale_intercept),
        slope: span(|h| h.rescale_slope),
        intercept_override: options.rescale_intercept_override,
    }
}
