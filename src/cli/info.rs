//! `guidesmith info` and `guidesmith export-volume`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use guidesmith::progress::Progress;
use guidesmith::volume::{self, HuStats, LoadOptions, NotHounsfield, Scan, SeriesInfo, Volume};
use serde::Serialize;

use super::segment::ValueArgs;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A folder (searched recursively), a DICOMDIR, or one DICOM file.
    path: PathBuf,
    /// The series to describe: SeriesInstanceUID or SeriesNumber (default: the CT series with the most slices).
    #[arg(long)]
    series: Option<String>,
    /// Load the chosen series and add geometry and HU statistics.
    #[arg(long)]
    stats: bool,
    /// (Implies --stats.)
    #[command(flatten)]
    values: ValueArgs,
    /// Print one JSON document instead of tables (keys: docs/CLI.md).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A folder (searched recursively), a DICOMDIR, or one DICOM file.
    path: PathBuf,
    /// The series: SeriesInstanceUID or SeriesNumber (default: the CT series with the most slices).
    #[arg(long)]
    series: Option<String>,
    /// Output .npy file.
    #[arg(short, long)]
    output: PathBuf,
    /// Print the load time as `PEER_RESULT {"step_s": S}` (for the peer benchmark harness).
    #[arg(long, hide = true)]
    peer_timing: bool,
}

#[derive(Serialize)]
struct InfoDocument<'a> {
    input: String,
    files_tried: usize,
    series: Vec<&'a SeriesInfo>,
    selected_series: Option<String>,
    skipped: &'a [volume::SkippedFile],
    volume: Option<VolumeFacts>,
}

#[derive(Serialize)]
struct VolumeFacts {
    dimensions: [usize; 3],
    spacing_mm: [f64; 3],
    origin_mm: [f64; 3],
    direction_cosines: [[f64; 3]; 3],
    #[serde(flatten)]
    hu: HuStats,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_hounsfield: Option<NotHounsfield>,
}

fn facts(volume: &Volume) -> VolumeFacts {
    let g = &volume.geometry;
    VolumeFacts {
        dimensions: g.dims,
        spacing_mm: g.spacing_mm,
        origin_mm: g.origin_mm,
        direction_cosines: g.axes,
        hu: volume.stats(),
        warnings: volume.series.warnings.clone(),
        not_hounsfield: volume.series.not_hounsfield.clone(),
    }
}

pub fn run_info(args: &InfoArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let options = args.values.load_options();
    let stats = args.stats || options.rescale_intercept_override.is_some();
    print_info(&args.path, args.series.as_deref(), stats, args.json, &options, progress)
}

/// List the series of `path`; with `stats`, load the chosen one (with `options`) and describe it.
fn print_info(
    path: &std::path::Path,
    series: Option<&str>,
    stats: bool,
    json: bool,
    options: &LoadOptions,
    progress: &dyn Progress,
) -> anyhow::Result<ExitCode> {
    super::existing(path)?;
    let mut scan = volume::scan(path, progress)?;
    let selected_index = if series.is_some() || stats {
        let s = scan.select(series)?;
        Some(scan.index_of(s))
    } else if scan.series.is_empty() {
        // Listing an input with no series is a failed look-up, not an empty success.
        return Err(scan
            .select(None)
            .err()
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("no series")));
    } else {
        scan.select(None).ok().map(|s| scan.index_of(s))
    };
    let volume = match (stats, selected_index) {
        (true, Some(i)) => Some(scan.load_with(i, options, progress).context("loading the series")?),
        _ => None,
    };
    let selected_uid = volume
        .as_ref()
        .map(|v| v.series.series_uid.clone())
        .or_else(|| selected_index.map(|i| scan.series[i].info.series_uid.clone()));
    if json {
        let doc = InfoDocument {
            input: path.display().to_string(),
            files_tried: scan.files_tried,
            series: scan.series.iter().map(|s| &s.info).collect(),
            selected_series: selected_uid,
            skipped: &scan.skipped,
            volume: volume.as_ref().map(facts),
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        print_tables(&scan, selected_index, volume.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_tables(scan: &Scan, selected: Option<usize>, volume: Option<&Volume>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} files tried, {} series, {} skipped",
        scan.input.display(),
        scan.files_tried,
        scan.series.len(),
        scan.skipped.len()
    )?;
    writeln!(
        out,
        "\n  {:>6}  {:<4}  {:>6}  {:>9}  {:>13}  {:>8}  {:>10}  {:>6}  {:<28}  description",
        "number", "mod", "slices", "matrix", "pixel mm", "slice mm", "thick mm", "tilt", "transfer syntax"
    )?;
    for (i, s) in scan.series.iter().enumerate() {
        let info = &s.info;
        let mark = if Some(i) == selected { '*' } else { ' ' };
        let thickness: Vec<String> = info.thickness_mm.iter().map(|t| format!("{t}")).collect();
        writeln!(
            out,
            "{mark} {:>6}  {:<4}  {:>6}  {:>9}  {:>13}  {:>8}  {:>10}  {:>6}  {:<28}  {}",
            info.series_number.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            info.modality,
            info.slices,
            format!("{}x{}", info.matrix[0], info.matrix[1]),
            format!("{:.3}/{:.3}", info.pixel_spacing_mm[0], info.pixel_spacing_mm[1]),
            info.slice_spacing_mm
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "-".into()),
            if thickness.is_empty() {
                "-".into()
            } else {
                thickness.join(",")
            },
            format!("{:.1}", info.tilt_deg),
            info.transfer_syntaxes.join(", "),
            info.description
        )?;
        writeln!(
            out,
            "          uid {}",
            if info.series_uid.is_empty() {
                "(none: grouped by frame of reference, orientation and matrix)"
            } else {
                &info.series_uid
            }
        )?;
        for w in &info.warnings {
            writeln!(out, "          warning: {w}")?;
        }
        if let Some(e) = &info.error {
            writeln!(out, "          cannot load: {e}")?;
        }
    }
    if !scan.skipped.is_empty() {
        writeln!(out, "\nskipped files:")?;
        for f in &scan.skipped {
            writeln!(out, "  {}: {}", f.path.display(), f.reason)?;
        }
    }
    if let Some(v) = volume {
        let f = facts(v);
        let g = &v.geometry;
        writeln!(out, "\nvolume of series {}:", v.series.label())?;
        writeln!(out, "  dimensions      {} x {} x {}", g.dims[0], g.dims[1], g.dims[2])?;
        writeln!(
            out,
            "  spacing mm      {:.4} / {:.4} / {:.4}",
            g.spacing_mm[0], g.spacing_mm[1], g.spacing_mm[2]
        )?;
        writeln!(
            out,
            "  origin mm (LPS) {:.3}, {:.3}, {:.3}",
            g.origin_mm[0], g.origin_mm[1], g.origin_mm[2]
        )?;
        for (name, a) in ["i (columns)", "j (rows)", "k (slices)"].iter().zip(g.axes.iter()) {
            writeln!(out, "  axis {name:<11} {:+.5}, {:+.5}, {:+.5}", a[0], a[1], a[2])?;
        }
        writeln!(out, "  HU min / max    {} / {}", f.hu.min_hu, f.hu.max_hu)?;
        writeln!(out, "  HU mean         {:.2}", f.hu.mean_hu)?;
        writeln!(out, "  voxels >= 226 HU {}", f.hu.voxels_at_or_above_226_hu)?;
        // What loading found (values that cannot be HU, clamping, an intercept replaced), beyond the scan's list.
        let listed = selected
            .map(|i| scan.series[i].info.warnings.as_slice())
            .unwrap_or_default();
        for w in f.warnings.iter().filter(|w| !listed.contains(w)) {
            writeln!(out, "  warning: {w}")?;
        }
    }
    Ok(())
}

pub fn run_export(args: &ExportArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    super::existing(&args.path)?;
    let start = Instant::now();
    let (volume, scan) = volume::load(&args.path, args.series.as_deref(), progress)?;
    let load_s = start.elapsed().as_secs_f64();
    for f in &scan.skipped {
        eprintln!("skipped {}: {}", f.path.display(), f.reason);
    }
    for w in &volume.series.warnings {
        eprintln!("warning: {w}");
    }
    guidesmith::atomic::write_atomic(&args.output, |w| guidesmith::npy::write_npy(&volume, w))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if args.peer_timing {
        println!("PEER_RESULT {{\"step_s\": {load_s:.6}}}");
    }
    Ok(ExitCode::SUCCESS)
}
