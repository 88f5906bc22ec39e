//! Argument parsing (clap) and the subcommands. Each subcommand validates its arguments, calls the library (the
//! case layer, `guidesmith::case`, for anything that chains steps) and formats the result; no pipeline logic lives
//! here.
//!
//! Exit codes, the same for every command: 0 done; 1 the input was refused (a missing, truncated or invalid file, a
//! value out of range, an edit the plan refuses) or a check failed (`check`, `plan check`, `build`); 2 usage errors
//! (unknown flags, missing arguments: clap's own).

mod approve;
mod build;
mod bundle;
mod demo;
mod flap;
mod info;
mod model;
mod plan;
mod progress;
mod segment;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// guidesmith: patient-specific surgical guides from CT.
#[derive(Debug, Parser)]
#[command(name = "guidesmith", version, about, propagate_version = true)]
pub struct Cli {
    /// Do not show progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the series found under a folder, DICOMDIR or file; with --stats, load one and describe the volume.
    Info(info::InfoArgs),
    /// Load a series and write its HU volume as a NumPy .npy file (int16, shape slices x rows x columns).
    ExportVolume(info::ExportArgs),
    /// Segment bone from a CT series and write its closed surface as a binary STL, with the check results.
    Segment(segment::SegmentArgs),
    /// Run every mesh check on an STL file (exit 1 when one fails).
    Check(segment::CheckArgs),
    /// Decimate a closed STL mesh (quadric error), keeping it closed and manifold.
    Decimate(segment::DecimateArgs),
    /// Write a synthetic CT series (a jaw or a sphere with known geometry) as real DICOM files.
    Synth(demo::SynthArgs),
    /// Build every guide of a plan, check it, and write STL, 3MF, manifest and renders (nothing if a check fails).
    Build(build::BuildArgs),
    /// Record a review of a plan (approval or rejection) bound to the plan, its CT, templates, printer profiles,
    /// screw catalogue and the software; `build` releases guides only with a current surgeon's approval.
    Approve(approve::ApproveArgs),
    /// Build a plan's guides and write the print lab's bundle: guides, manifest, plan (no paths of this machine),
    /// the bound templates, printer profiles and screw catalogue, and a checksum list, in one reproducible zip.
    Bundle(bundle::BundleArgs),
    /// Write printable anatomical models of the case: the planned region as it is, after the planned resection, and
    /// the resected segment (closed, checked STL).
    Model(model::ModelArgs),
    /// Write the whole plan as one glTF binary (.glb) for a browser, Blender or a VR headset: bone, structures,
    /// planes, drills, the guides that pass their checks and the anatomical models, named, coloured, patient mm.
    Gltf(model::GltfArgs),
    /// Write the plan report (PDF): case, software and hashes, the CT and segmentation, every plane, drill, structure
    /// and guide with its numbers, checks and views, findings, the tolerance model and printers, and the reviews.
    Report(model::ReportArgs),
    /// Check a bundle offline: every hash, the guides as solids, and the surgeon's approval's binding (exit 0 only
    /// when all holds and it is released).
    Verify(bundle::VerifyArgs),
    /// Make and edit a surgical plan (planes, drills, structures, guides) and measure it against the bone.
    Plan(plan::PlanArgs),
    /// The main job on the bundled sample case: write a synthetic jaw CT as DICOM, load it, segment the bone, write a
    /// plan (a symphysis resection and three drills) and build, check and export a cutting guide and a drill guide.
    Demo(demo::DemoArgs),
    /// Open the desktop application, optionally on a plan (.json), a bone STL or a CT folder / DICOMDIR.
    #[cfg(feature = "gui")]
    Gui(GuiArgs),
}

/// Arguments of `guidesmith gui`.
#[cfg(feature = "gui")]
#[derive(clap::Args, Debug)]
struct GuiArgs {
    /// A plan file (.json), a bone STL (.stl), or a CT folder, DICOMDIR or DICOM file.
    path: Option<std::path::PathBuf>,
    /// After the CT is loaded, make the bone surface with the bone preset (as `guidesmith segment` would).
    #[arg(long)]
    make_surface: bool,
    /// When the start-up work is done, save a screenshot of the window here (PNG) and quit (for checks and docs).
    #[arg(long, value_name = "PNG")]
    screenshot: Option<std::path::PathBuf>,
    /// Open the bundled demo case (the synthetic jaw of `guidesmith demo`, with its plan).
    #[arg(long, conflicts_with = "path")]
    demo: bool,
    /// Once the start-up work is done, orbit the 3D view for this many frames and print the frame times (a benchmark;
    /// see docs/PERFORMANCE.md).
    #[arg(long, value_name = "FRAMES", default_value_t = 0)]
    orbit_frames: u32,
    /// Once the plan is open, build its guides and select this one, seen along its seating direction (its checks and
    /// footprint shown; for screenshots of the guide design).
    #[arg(long, value_name = "GUIDE")]
    select_guide: Option<String>,
    /// Once the plan is open (and its guides built), switch to review mode.
    #[arg(long)]
    review: bool,
}

/// Exit code of a command whose input was refused or whose check failed (errors returned from [`run`] exit with it
/// too, see `main`).
pub(crate) const FAILED: u8 = 1;

/// Run the parsed command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let progress = progress::BarProgress::new(cli.quiet);
    match cli.command {
        Command::Info(args) => info::run_info(&args, &progress),
        Command::ExportVolume(args) => info::run_export(&args, &progress),
        Command::Segment(args) => segment::run_segment(&args, &progress),
        Command::Check(args) => segment::run_check(&args),
        Command::Decimate(args) => segment::run_decimate(&args),
        Command::Synth(args) => demo::run_synth(&args),
        Command::Build(args) => build::run_build(&args, &progress),
        Command::Plan(args) => plan::run_plan(&args, &progress),
        Command::Approve(args) => approve::run_approve(&args, &progress),
        Command::Bundle(args) => bundle::run_bundle(&args, &progress),
        Command::Verify(args) => bundle::run_verify(&args),
        Command::Model(args) => model::run_model(&args, &progress),
        Command::Gltf(args) => model::run_gltf(&args, &progress),
        Command::Report(args) => model::run_report(&args, &progress),
        Command::Demo(args) => demo::run_demo(&args, &progress),
        #[cfg(feature = "gui")]
        Command::Gui(args) => {
            if let Some(p) = &args.path {
                existing(p)?;
            }
            crate::app::run(crate::app::StartOptions {
                open: args.path,
                make_surface: args.make_surface,
                screenshot: args.screenshot,
                demo: args.demo,
                orbit_frames: args.orbit_frames,
                config_dir: None,
                select_guide: args.select_guide,
                review: args.review,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A path argument that must exist.
pub(crate) fn existing(path: &std::path::Path) -> anyhow::Result<()> {
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    Ok(())
}
