//! `guidesmith synth` (write a synthetic CT series) and `guidesmith demo` (the README's main job, run by the case
//! layer's demo; this file only prints its steps).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use guidesmith::case::demo::{run_demo as run_demo_case, DemoEvent};
use guidesmith::progress::Progress;
use guidesmith::synth::{self, Compression, Phantom, SeriesSpec};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShapeArg {
    /// A U-shaped mandible-like tube with a cortical shell, in soft tissue.
    Jaw,
    /// A 20 mm sphere of 1000 HU in -1000 HU.
    Sphere,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
    Deflated,
    Rle,
    JpegLs,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::ExplicitLe => Compression::ExplicitVrLittleEndian,
            CompressionArg::ImplicitLe => Compression::ImplicitVrLittleEndian,
            CompressionArg::ExplicitBe => Compression::ExplicitVrBigEndian,
            CompressionArg::Deflated => Compression::DeflatedExplicitVrLittleEndian,
            CompressionArg::Rle => Compression::RleLossless,
            CompressionArg::JpegLs => Compression::JpegLsLossless,
        }
    }
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder for the DICOM files (created; must be empty or absent).
    #[arg(short, long)]
    output: PathBuf,
    /// What to put in the volume.
    #[arg(long, value_enum, default_value_t = ShapeArg::Jaw)]
    shape: ShapeArg,
    /// Columns and rows of each slice.
    #[arg(long, default_value_t = 256)]
    matrix: u16,
    /// Number of slices.
    #[arg(long, default_value_t = 96)]
    slices: usize,
    /// Pixel spacing in mm.
    #[arg(long, default_value_t = 0.5)]
    pixel_mm: f64,
    /// Slice spacing in mm.
    #[arg(long, default_value_t = 0.5)]
    slice_mm: f64,
    /// Gantry tilt in degrees (the slices are stacked along patient z, the image plane tilted).
    #[arg(long, default_value_t = 0.0)]
    tilt_deg: f64,
    /// Noise standard deviation in HU.
    #[arg(long, default_value_t = 20.0)]
    noise_hu: f64,
    /// Transfer syntax of the files.
    #[arg(long, value_enum, default_value_t = CompressionArg::ExplicitLe)]
    compression: CompressionArg,
}

/// `guidesmith demo`: the bundled sample case, end to end.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder (created): ct/ (the DICOM series), bone.stl, plan.json and guides/ (STL, 3MF, review images,
    /// manifest.json). A folder the demo made before is replaced; any other non-empty one is refused.
    #[arg(short, long, default_value = "out/demo")]
    output: PathBuf,
}

fn empty_or_absent(dir: &Path) -> anyhow::Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!("{} is not empty; choose a new folder", dir.display());
    }
    Ok(())
}

fn write(args: &SynthArgs) -> anyhow::Result<synth::WrittenSeries> {
    let phantom = match args.shape {
        ShapeArg::Jaw => Phantom::jaw(),
        ShapeArg::Sphere => Phantom::sphere([0.0, 0.0, 0.0], 20.0, 1000.0),
    }
    .with_noise(args.noise_hu, 1);
    let mut spec = SeriesSpec::axial(args.matrix, args.matrix, args.slices, args.pixel_mm, args.slice_mm);
    spec.gantry_tilt_deg = args.tilt_deg;
    spec.compression = args.compression.into();
    spec.series_description = match args.shape {
        ShapeArg::Jaw => "guidesmith synthetic jaw".into(),
        ShapeArg::Sphere => "guidesmith synthetic sphere".into(),
    };
    let spec = spec.centered_on([0.0, 0.0, 0.0]);
    synth::write_series(&phantom, &spec, &args.output).with_context(|| format!("writing {}", args.output.display()))
}

pub fn run_synth(args: &SynthArgs) -> anyhow::Result<ExitCode> {
    empty_or_absent(&args.output)?;
    let written = write(args)?;
    println!("wrote {} slices to {}", written.slices.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_demo(args: &DemoArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let mut failed: Option<anyhow::Error> = None;
    let result = run_demo_case(&args.output, progress, &mut |event| {
        if let Err(e) = print_event(event) {
            failed.get_or_insert(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one step of the demo as it happens.
fn print_event(event: DemoEvent<'_>) -> anyhow::Result<()> {
    match event {
        DemoEvent::WritingCt { dir, spec } => println!(
            "1/5 writing the bundled synthetic jaw CT ({} x {} x {}, {} mm) to {}",
            spec.columns,
            spec.rows,
            spec.slices.count(),
            spec.pixel_spacing_mm[0],
            dir.display()
        ),
        DemoEvent::CtWritten { files } => println!("    {files} DICOM files written"),
        DemoEvent::Loaded { scan, volume } => {
            println!(
                "2/5 loading it back (as guidesmith info {} --stats)\n",
                scan.input.display()
            );
            let selected = scan
                .series
                .iter()
                .position(|s| s.info.series_uid == volume.series.series_uid);
            super::info::print_tables(scan, selected, Some(volume))?;
        }
        DemoEvent::BoneWritten { path, bone } => {
            let r = &bone.report;
            println!(
                "\n3/5 segmented the bone (preset bone, largest component) and wrote {}",
                path.display()
            );
            println!(
                "    {} voxels, {} triangles, {:.0} mm^3, {:.0} mm^2, {} component(s); closed, manifold, outward, \
                 no degenerate or intersecting triangles",
                bone.mask.count(),
                r.triangles,
                r.volume_mm3,
                r.area_mm2,
                r.components
            );
        }
        DemoEvent::PlanWritten { path, plan } => {
            println!(
                "\n4/5 plan {} (case {}): {} resection planes, {} drill trajectories, {} guides",
                path.display(),
                plan.case_id,
                plan.planes.len(),
                plan.drills.len(),
                plan.guides.len()
            );
            println!(
                "5/5 building and checking the guides (as guidesmith build {} -o {})",
                path.display(),
                path.with_file_name("guides").display()
            );
        }
        DemoEvent::GuidesBuilt { guides } => super::build::print_summary(guides),
        DemoEvent::GuidesWritten { dir, summary } => println!(
            "    wrote {} files (STL, 3MF, review images) and manifest.json to {}",
            summary.files.len(),
            dir.display()
        ),
    }
    Ok(())
}
