//! `guidesmith segment` (CT to a checked bone STL) and `guidesmith check` (the full check report of a mesh).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use guidesmith::bone::{self, SurfaceOptions};
use guidesmith::mesh::{self, DecimateOptions, MeshReport};
use guidesmith::progress::Progress;
use guidesmith::segment::{BoxMm, Connectivity, HuRange, Keep, PlaneMm, SegmentRecipe};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// CT input: a folder (searched recursively), a DICOMDIR or one file.
    ct: PathBuf,
    #[command(flatten)]
    pub(crate) seg: SegmentationArgs,
    /// Case ID written in the STL header (never the patient's name or ID).
    #[arg(long, default_value = "case")]
    case: String,
    /// Output STL file (binary).
    #[arg(short, long)]
    output: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Print the surface time as `PEER_RESULT {"step_s": S}` (for the peer benchmark harness).
    #[arg(long, hide = true)]
    peer_timing: bool,
}

/// The series choice, segmentation recipe and surface options, shared by `segment` and `plan new`.
#[derive(Debug, Args)]
pub struct SegmentationArgs {
    /// The series: SeriesInstanceUID or SeriesNumber (default: the CT series with the most slices).
    #[arg(long)]
    pub(crate) series: Option<String>,
    #[command(flatten)]
    pub(crate) values: ValueArgs,
    /// HU range MIN..MAX (inclusive), or a preset name: bone (226..3071), cortical (662..1988), spongy (148..661).
    #[arg(long, conflicts_with = "preset")]
    hu: Option<HuRange>,
    /// A preset HU range: bone, cortical or spongy.
    #[arg(long)]
    preset: Option<HuRange>,
    /// Keep the largest component (`largest`) or the N largest (`N`).
    #[arg(long, conflicts_with = "seed")]
    keep: Option<String>,
    /// Keep the component containing this point, x,y,z in patient LPS mm (repeatable).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    seed: Vec<[f64; 3]>,
    /// Connectivity of components: 6 or 26.
    #[arg(long, default_value_t = 6)]
    connectivity: u8,
    /// Fill enclosed cavities (background not connected to the volume border).
    #[arg(long)]
    fill_cavities: bool,
    /// Fill holes slice by slice.
    #[arg(long)]
    fill_holes_2d: bool,
    /// Morphological closing with a ball of this radius (mm).
    #[arg(long, default_value_t = 0.0)]
    close_mm: f64,
    /// Morphological opening with a ball of this radius (mm).
    #[arg(long, default_value_t = 0.0)]
    open_mm: f64,
    /// Keep only what lies in this box: x0,y0,z0,x1,y1,z1 in patient LPS mm (repeatable: the union).
    #[arg(long, value_parser = parse_box, allow_hyphen_values = true)]
    crop: Vec<BoxMm>,
    /// Cut away the side a plane's normal points to: px,py,pz,nx,ny,nz (point in LPS mm, normal) (repeatable).
    #[arg(long, value_parser = parse_plane, allow_hyphen_values = true)]
    cut_plane: Vec<PlaneMm>,
    /// Cut away what lies in this box: x0,y0,z0,x1,y1,z1 in patient LPS mm (repeatable).
    #[arg(long, value_parser = parse_box, allow_hyphen_values = true)]
    cut_box: Vec<BoxMm>,
    /// Taubin smoothing iterations.
    #[arg(long, default_value_t = 0)]
    pub(crate) smooth: usize,
    /// Decimate with this error bound (mm).
    #[arg(long)]
    pub(crate) decimate_mm: Option<f64>,
    /// Decimate to this fraction of the triangles (e.g. 0.1).
    #[arg(long)]
    pub(crate) decimate_keep: Option<f64>,
}

/// How stored values become HU, where the files are wrong; shared by `info`, `segment` and `plan new`.
#[derive(Debug, Args)]
pub struct ValueArgs {
    /// Use this RescaleIntercept (HU) instead of the files' (0028,1052), e.g. -1024 for a CT exported with
    /// intercept 0 and air stored as 0 (the loader warns about such a series).
    #[arg(long, value_name = "HU", allow_hyphen_values = true)]
    rescale_intercept: Option<f64>,
}

impl ValueArgs {
    /// The load options these flags describe.
    pub(crate) fn load_options(&self) -> guidesmith::volume::LoadOptions {
        guidesmith::volume::LoadOptions {
            rescale_intercept_override: self.rescale_intercept,
        }
    }
}

/// Print the files skipped while loading and the warnings about the loaded volume (resampling, values that cannot
/// be HU, ...) to stderr.
pub(crate) fn report_load(volume: &guidesmith::volume::Volume, scan: &guidesmith::volume::Scan) {
    for f in &scan.skipped {
        eprintln!("skipped {}: {}", f.path.display(), f.reason);
    }
    for w in &volume.series.warnings {
        eprintln!("warning: {w}");
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A mesh file (STL, ASCII or binary).
    mesh: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn numbers<const N: usize>(text: &str, what: &str) -> Result<[f64; N], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != N {
        return Err(format!("{what} needs {N} comma-separated numbers, got {:?}", text));
    }
    let mut out = [0.0; N];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse::<f64>()
            .map_err(|_| format!("{p:?} in {text:?} is not a number"))?;
        if !o.is_finite() {
            return Err(format!("{p:?} in {text:?} is not finite"));
        }
    }
    Ok(out)
}

pub(crate) fn parse_point(text: &str) -> Result<[f64; 3], String> {
    numbers::<3>(text, "a point (x,y,z mm)")
}

fn parse_box(text: &str) -> Result<BoxMm, String> {
    let v = numbers::<6>(text, "a box (x0,y0,z0,x1,y1,z1 mm)")?;
    Ok(BoxMm {
        min_mm: [v[0].min(v[3]), v[1].min(v[4]), v[2].min(v[5])],
        max_mm: [v[0].max(v[3]), v[1].max(v[4]), v[2].max(v[5])],
    })
}

fn parse_plane(text: &str) -> Result<PlaneMm, String> {
    let v = numbers::<6>(text, "a plane (px,py,pz,nx,ny,nz)")?;
    Ok(PlaneMm {
        point_mm: [v[0], v[1], v[2]],
        normal: [v[3], v[4], v[5]],
    })
}

impl SegmentationArgs {
    /// The recipe the options describe, validated; `--hu` or `--preset` is required.
    pub(crate) fn recipe(&self) -> anyhow::Result<SegmentRecipe> {
        if self.hu.or(self.preset).is_none() {
            anyhow::bail!("give --hu MIN..MAX or --preset bone|cortical|spongy");
        }
        self.recipe_or_bone_preset()
    }

    /// Whether neither `--hu` nor `--preset` was given.
    pub(crate) fn no_hu_range(&self) -> bool {
        self.hu.or(self.preset).is_none()
    }

    /// The recipe the options describe, validated; without `--hu` or `--preset` the bone preset (226..3071 HU).
    pub(crate) fn recipe_or_bone_preset(&self) -> anyhow::Result<SegmentRecipe> {
        let hu = self.hu.or(self.preset).unwrap_or(HuRange::BONE);
        let mut recipe = SegmentRecipe::new(hu);
        recipe.connectivity = match self.connectivity {
            6 => Connectivity::Six,
            26 => Connectivity::TwentySix,
            n => anyhow::bail!("--connectivity must be 6 or 26, not {n}"),
        };
        recipe.keep = match (&self.keep, self.seed.is_empty()) {
            (Some(k), _) if k == "largest" => Keep::Largest,
            (Some(k), _) => match k.parse::<usize>() {
                Ok(n) if n >= 1 => Keep::NLargest { n },
                _ => anyhow::bail!("--keep must be `largest` or a number of components >= 1, not {k:?}"),
            },
            (None, false) => Keep::Containing {
                seeds_mm: self.seed.clone(),
            },
            (None, true) => Keep::All,
        };
        recipe.fill_cavities = self.fill_cavities;
        recipe.fill_holes_2d = self.fill_holes_2d;
        recipe.close_mm = self.close_mm;
        recipe.open_mm = self.open_mm;
        recipe.crops = self.crop.clone();
        recipe.cut_planes = self.cut_plane.clone();
        recipe.cut_boxes = self.cut_box.clone();
        recipe.validate()?;
        Ok(recipe)
    }

    /// The smoothing and decimation options.
    pub(crate) fn surface_options(&self) -> SurfaceOptions {
        SurfaceOptions {
            smooth_iterations: self.smooth,
            decimate: self.decimate_mm.map(|e| DecimateOptions {
                target_triangles: None,
                max_error_mm: Some(e),
            }),
            decimate_keep_fraction: self.decimate_keep,
        }
    }
}

#[derive(Serialize)]
struct SegmentDocument<'a> {
    output: String,
    series_uid: &'a str,
    recipe: &'a SegmentRecipe,
    voxels_kept: usize,
    segmentation: &'a guidesmith::segment::SegmentStats,
    /// Seconds to find the series and load it (the bone's stages are in `timings`).
    load_s: f64,
    timings: &'a bone::BoneTimings,
    mesh: &'a MeshReport,
}

pub fn run_segment(args: &SegmentArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    super::existing(&args.ct)?;
    let recipe = args.seg.recipe()?;
    let started = std::time::Instant::now();
    let (volume, scan) = guidesmith::volume::load_with(
        &args.ct,
        args.seg.series.as_deref(),
        &args.seg.values.load_options(),
        progress,
    )?;
    let load_s = started.elapsed().as_secs_f64();
    report_load(&volume, &scan);
    let options = args.seg.surface_options();
    let model = bone::extract_bone_surface(&volume, &recipe, &options, progress)?;
    let header = format!("guidesmith case={}", args.case);
    guidesmith::atomic::write_atomic(&args.output, |w| {
        mesh::write_stl_binary(&model.mesh, w, &header).map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", args.output.display()))?;
    if args.peer_timing {
        let t = &model.timings;
        println!(
            "PEER_RESULT {{\"step_s\": {:.6}}}",
            t.segment_s + t.surface_s + t.smooth_s + t.decimate_s
        );
    }
    let voxels_kept = model.voxels_kept;
    if args.json {
        let doc = SegmentDocument {
            output: args.output.display().to_string(),
            series_uid: &volume.series.series_uid,
            recipe: &recipe,
            voxels_kept,
            segmentation: &model.segment_stats,
            load_s,
            timings: &model.timings,
            mesh: &model.report,
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let r = &model.report;
        let mut out = std::io::stdout().lock();
        writeln!(out, "wrote {}", args.output.display())?;
        writeln!(out, "  voxels kept      {voxels_kept}")?;
        writeln!(out, "  triangles        {}", r.triangles)?;
        writeln!(out, "  volume           {:.1} mm^3", r.volume_mm3)?;
        writeln!(out, "  area             {:.1} mm^2", r.area_mm2)?;
        writeln!(out, "  components       {}", r.components)?;
        writeln!(
            out,
            "  checks           all passed (closed, manifold, outward, no degenerate or intersecting triangles)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mesh = read_mesh(&args.mesh)?;
    let report = MeshReport::new(&mesh);
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        println!("{}: {report}", args.mesh.display());
    }
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_mesh(path: &Path) -> anyhow::Result<mesh::Mesh> {
    Ok(mesh::read_stl_file(path)?)
}

#[derive(Debug, Args)]
pub struct DecimateArgs {
    /// Input mesh (STL, ASCII or binary).
    mesh: PathBuf,
    /// Keep this fraction of the triangles (e.g. 0.1).
    #[arg(long)]
    keep: Option<f64>,
    /// Stop before the first collapse whose error exceeds this (mm).
    #[arg(long)]
    max_error_mm: Option<f64>,
    /// Case ID written in the STL header.
    #[arg(long, default_value = "case")]
    case: String,
    /// Output STL file (binary).
    #[arg(short, long)]
    output: PathBuf,
    /// Print the decimation time as `PEER_RESULT {"step_s": S}` (for the peer benchmark harness).
    #[arg(long, hide = true)]
    peer_timing: bool,
}

pub fn run_decimate(args: &DecimateArgs) -> anyhow::Result<ExitCode> {
    if args.keep.is_none() && args.max_error_mm.is_none() {
        anyhow::bail!("give --keep FRACTION and/or --max-error-mm E");
    }
    if let Some(keep) = args.keep {
        if !(keep > 0.0 && keep <= 1.0) {
            anyhow::bail!("--keep must be in (0, 1], not {keep}");
        }
    }
    let mut input = read_mesh(&args.mesh)?;
    // Triangles that repeat a vertex after welding (zero area, as VTK's flying edges leaves) are dropped: the two
    // neighbours across them meet directly, so the mesh stays closed.
    let count = input.triangles.len();
    input.triangles.retain(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2]);
    let dropped = count - input.triangles.len();
    if dropped > 0 {
        eprintln!("note: dropped {dropped} triangles that repeat a vertex");
    }
    let before = MeshReport::new(&input);
    let topology_defects = before.invalid_triangles.count
        + before.boundary_edges.count
        + before.non_manifold_edges.count
        + before.non_manifold_vertices.count
        + before.inconsistent_edges.count;
    if topology_defects > 0 {
        anyhow::bail!(
            "{} is not a closed manifold mesh, so decimation could not keep it one; repair it first:\n{before}",
            args.mesh.display()
        );
    }
    let options = DecimateOptions {
        target_triangles: args
            .keep
            .map(|k| ((input.triangles.len() as f64) * k).round().max(4.0) as usize),
        max_error_mm: args.max_error_mm,
    };
    let start = std::time::Instant::now();
    let output = mesh::decimate_checked(&input, options)?;
    let seconds = start.elapsed().as_secs_f64();
    let after = MeshReport::new(&output);
    if !after.is_valid() {
        anyhow::bail!("the decimated mesh failed its checks; nothing written:\n{after}");
    }
    let header = format!("guidesmith case={}", args.case);
    guidesmith::atomic::write_atomic(&args.output, |w| {
        mesh::write_stl_binary(&output, w, &header).map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", args.output.display()))?;
    if args.peer_timing {
        println!("PEER_RESULT {{\"step_s\": {seconds:.6}}}");
    } else {
        println!(
            "wrote {}: {} -> {} triangles, volume {:.1} -> {:.1} mm^3 ({:+.3} %), all checks passed",
            args.output.display(),
            before.triangles,
            after.triangles,
            before.volume_mm3,
            after.volume_mm3,
            100.0 * (after.volume_mm3 - before.volume_mm3) / before.volume_mm3
        );
    }
    Ok(ExitCode::SUCCESS)
}
