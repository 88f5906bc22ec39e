//! `guidesmith synth` (write a synthetic CT series) and `guidesmith demo` (the README's main job).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use guidesmith::bone::{self, SurfaceOptions};
use guidesmith::progress::Progress;
use guidesmith::segment::{HuRange, Keep, SegmentRecipe};
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

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder (created).
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

/// Marks a folder as the demo's own output.
const DEMO_MARKER: &str = ".guidesmith-demo";

pub fn run_demo(args: &DemoArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let ct = args.output.join("ct");
    // A folder this command made before (it carries the marker) is replaced, so the README's main job can be run
    // again; any other non-empty folder is left alone.
    let marker = args.output.join(DEMO_MARKER);
    if marker.is_file() {
        for old in [
            ct.clone(),
            args.output.join("bone.stl"),
            args.output.join("plan.json"),
            args.output.join("guides"),
        ] {
            if old.is_dir() {
                std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
            } else if old.exists() {
                std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
            }
        }
    }
    empty_or_absent(&ct)?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    std::fs::write(
        &marker,
        "written by `guidesmith demo`; the demo replaces this folder's ct/, bone.stl, plan.json and guides/\n",
    )
    .with_context(|| format!("writing {}", marker.display()))?;
    let synth_args = SynthArgs {
        output: ct.clone(),
        shape: ShapeArg::Jaw,
        matrix: 256,
        slices: 96,
        pixel_mm: 0.5,
        slice_mm: 0.5,
        tilt_deg: 0.0,
        noise_hu: 20.0,
        compression: CompressionArg::ExplicitLe,
    };
    println!(
        "1/5 writing the bundled synthetic jaw CT (256 x 256 x 96, 0.5 mm) to {}",
        ct.display()
    );
    let written = write(&synth_args)?;
    println!("    {} DICOM files written", written.slices.len());
    println!("2/5 loading it back (guidesmith info {} --stats)\n", ct.display());
    super::info::print_info(&ct, None, true, false, progress)?;
    let stl = args.output.join("bone.stl");
    let guides = args.output.join("guides");
    println!(
        "\n3/5 segmenting the bone (preset bone, largest component) and writing {}",
        stl.display()
    );
    let (volume, _) = guidesmith::volume::load(&ct, None, progress)?;
    let mut recipe = SegmentRecipe::new(HuRange::BONE);
    recipe.keep = Keep::Largest;
    let model = bone::extract_bone(&volume, &recipe, &SurfaceOptions::default(), progress)?;
    guidesmith::atomic::write_atomic(&stl, |w| {
        guidesmith::mesh::write_stl_binary(&model.mesh, w, "guidesmith case=DEMO-JAW").map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", stl.display()))?;
    let r = &model.report;
    println!(
        "    {} voxels, {} triangles, {:.0} mm^3, {:.0} mm^2, {} component(s); closed, manifold, outward, \
         no degenerate or intersecting triangles",
        model.mask.count(),
        r.triangles,
        r.volume_mm3,
        r.area_mm2,
        r.components
    );

    let plan_path = args.output.join("plan.json");
    let plan = demo_plan(&volume, &recipe, &model.mesh)?;
    plan.save(&plan_path)?;
    println!(
        "\n4/5 plan {} (case {}): {} resection planes, {} drill trajectories, {} guides",
        plan_path.display(),
        plan.case_id,
        plan.planes.len(),
        plan.drills.len(),
        plan.guides.len()
    );
    println!(
        "5/5 building and checking the guides (guidesmith build {} -o {})",
        plan_path.display(),
        guides.display()
    );
    let result = guidesmith::guide::pipeline::build_plan_guides(
        &plan,
        &model.mesh,
        guidesmith::guide::pipeline::DEFAULT_PRINTER,
        progress,
    )?;
    super::build::print_summary(&result);
    let manifest = guidesmith::guide::pipeline::write_plan_guides(&guides, &plan, &model.mesh, &result)?;
    println!(
        "    wrote {} files, manifest.json and renders/ to {}",
        manifest.files.len(),
        guides.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The demo's plan on the synthetic jaw: a symphysis resection between two sagittal-ish planes with a cutting guide
/// seated from the front, and three bicortical drills in the left body with a drill guide seated from the side.
fn demo_plan(
    volume: &guidesmith::volume::Volume,
    recipe: &SegmentRecipe,
    bone: &guidesmith::mesh::Mesh,
) -> anyhow::Result<guidesmith::plan::Plan> {
    use guidesmith::plan::{
        BoneSource, CaseId, CtReference, CuttingPlane, DrillTrajectory, Footprint, GuideSpec, Plan, ResectedSide,
        Segmentation, SCHEMA_VERSION,
    };
    let bb = bone.bounding_box().context("the demo bone is empty")?;
    let query = guidesmith::measure::BoneQuery::new(bone)?;
    let front = bb.min_mm[1];
    let side = bb.max_mm[0];
    let plane = |name: &str, x: f64, side: ResectedSide| CuttingPlane {
        name: name.into(),
        point_mm: [x, front, 0.0],
        normal: [1.0, 0.0, 0.0],
        blade_thickness_mm: 0.6,
        resected_side: side,
    };
    let mut drills = Vec::new();
    for k in 0..3 {
        let y = -2.0 + 7.0 * k as f64;
        let hits = query.crossings([side + 5.0, y, 0.0], [-1.0, 0.0, 0.0], 0.0, 50.0)?;
        let entry = hits
            .first()
            .with_context(|| format!("the demo drill line at y = {y} mm misses the jaw"))?;
        drills.push(DrillTrajectory {
            name: format!("body-{}", k + 1),
            entry_mm: entry.point_mm,
            direction: [-1.0, 0.0, 0.0],
            length_mm: 16.0,
            diameter_mm: 1.5,
            screw_system: Some("2.0".into()),
        });
    }
    let rect = |pts: [[f64; 3]; 4]| Footprint {
        outline_mm: pts.to_vec(),
    };
    Ok(Plan {
        schema_version: SCHEMA_VERSION,
        case_id: CaseId::new("DEMO-JAW")?,
        ct: Some(CtReference::from_volume(volume, "ct")),
        bone: BoneSource {
            segmentation: Some(Segmentation {
                recipe: recipe.clone(),
                smooth_iterations: 0,
                decimate_keep_fraction: None,
            }),
            models: vec![],
        },
        landmarks: vec![],
        structures: vec![],
        planes: vec![
            plane("resection-right", -12.0, ResectedSide::Positive),
            plane("resection-left", 12.0, ResectedSide::Negative),
        ],
        drills,
        guides: vec![
            GuideSpec {
                name: "symphysis-cutting".into(),
                template: "cutting_guide".into(),
                // One fixation screw per bone segment: right, resected symphysis, left.
                parameters: [("fixation_hole_count".to_string(), 3.0)].into_iter().collect(),
                planes: vec!["resection-right".into(), "resection-left".into()],
                drills: vec![],
                seating_direction: [0.0, 1.0, 0.0],
                footprint: rect([
                    [-25.0, front, -5.0],
                    [25.0, front, -5.0],
                    [25.0, front, 5.0],
                    [-25.0, front, 5.0],
                ]),
            },
            GuideSpec {
                name: "left-body-drilling".into(),
                template: "drill_guide".into(),
                parameters: Default::default(),
                planes: vec![],
                drills: vec!["body-1".into(), "body-2".into(), "body-3".into()],
                seating_direction: [-1.0, 0.0, 0.0],
                footprint: rect([
                    [side, -8.0, -5.0],
                    [side, 18.0, -5.0],
                    [side, 18.0, 5.0],
                    [side, -8.0, 5.0],
                ]),
            },
        ],
        approvals: vec![],
    })
}
