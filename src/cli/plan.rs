//! `guidesmith plan ...`: make a plan on a CT, edit it element by element, and show or check it against the bone.
//!
//! Every edit loads the plan, applies one [`Edit`] through [`Plan::apply`] (so it is validated exactly as the GUI's
//! edits are) and rewrites the file atomically; a refused edit leaves the file untouched. `show` and `check` obtain
//! the bone the way `build` does ([`open_bone`]: the CT's hash checked, the segmentation re-run) and print the
//! library's [`Evaluation`]. Exit codes as for every command: 0 done, 1 bad input (a file, a value, an edit the plan
//! refuses) or `check` found errors, 2 usage errors (clap's).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use guidesmith::case::{new_plan_from_ct, new_plan_from_stl, open_bone, plan_ct_path, propose_guide, BoneOrigin};
use guidesmith::catalogue::Catalogue;
use guidesmith::finding::Severity;
use guidesmith::plan::{
    evaluate, json_schema, release_approval, Approval, ApprovalState, CaseId, CuttingPlane, DesignBinding,
    DrillTrajectory, Edit, Element, ElementKind, Evaluation, Footprint, GuideLabel, GuideSpec, Landmark, Plan,
    ResectedSide, Segmentation, Structure, StructureKind,
};
use guidesmith::progress::Progress;
use serde::Serialize;

use super::segment::{numbers, parse_point, SegmentationArgs};
use super::FAILED;
/// The table lists drill pairs whose holes are closer than this, mm (the rest only clutter it; `--json` has all).
const CLOSE_PAIR_SHOWN_MM: f64 = 5.0;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Load a CT, segment the bone (as `guidesmith segment`), and write a new plan referring to both.
    New(NewArgs),
    /// Add a cutting plane.
    AddPlane(AddPlaneArgs),
    /// Add a drill trajectory.
    AddDrill(AddDrillArgs),
    /// Add a structure drills must keep clear of (nerve, vessel, tooth root).
    AddStructure(AddStructureArgs),
    /// Add a named landmark point.
    AddLandmark(AddLandmarkArgs),
    /// Add a guide built from a template, carrying slots for planes and sleeves for drills.
    AddGuide(AddGuideArgs),
    /// Set one field of an element (VALUE is JSON, or else taken as a string).
    Set(SetArgs),
    /// Translate an element.
    Move(MoveArgs),
    /// Rotate an element about an axis through a pivot (default: the element's own point).
    Rotate(RotateArgs),
    /// Remove an element (a plane or drill a guide uses must be removed from the guide first).
    Remove(ElementArgs),
    /// Every element with its measurements against the bone, and the findings.
    Show(ShowArgs),
    /// The findings only; exit 1 when any is an error.
    Check(ShowArgs),
    /// Propose the free-flap reconstruction of the resection between planes (segments on the target contour, laid
    /// along the donor) and its donor guide, or lay it out again after a setting changed; recorded when it holds.
    Reconstruct(super::flap::ReconstructArgs),
    /// Print the plan's JSON Schema.
    Schema,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// CT input: a folder (searched recursively), a DICOMDIR or one file. Segmented into the bone, unless
    /// --bone-stl gives the bone; then it is only recorded (optional).
    #[arg(long, required_unless_present = "bone_stl")]
    ct: Option<PathBuf>,
    /// A bone surface segmented elsewhere (STL from 3D Slicer, Mimics, InVesalius...), repeatable: repaired where
    /// that is safe (welding, orientation, degenerate and duplicate faces, small holes), refused with the places
    /// where it is not. The plan's bone is these models instead of a segmentation.
    #[arg(long = "bone-stl")]
    bone_stl: Vec<PathBuf>,
    /// Case ID (never the patient's name or ID): 1-64 of A-Z a-z 0-9 . _ -
    #[arg(long)]
    case: String,
    #[command(flatten)]
    seg: SegmentationArgs,
    /// The plan file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing plan file.
    #[arg(long)]
    force: bool,
}

/// The plan file an edit applies to.
#[derive(Debug, Args)]
struct PlanFile {
    /// The plan (JSON); rewritten atomically.
    plan: PathBuf,
}

#[derive(Debug, Args)]
struct AddPlaneArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Unique name.
    #[arg(long)]
    name: String,
    /// A point of the plane, x,y,z in patient LPS mm.
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    point: [f64; 3],
    /// Normal, x,y,z (normalised).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    normal: [f64; 3],
    /// Saw blade thickness, mm.
    #[arg(long, default_value_t = 1.0)]
    blade_mm: f64,
    /// Which side is removed: positive (the normal's side), negative, or none.
    #[arg(long, value_enum, default_value_t = SideArg::None)]
    resect: SideArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SideArg {
    Positive,
    Negative,
    None,
}

#[derive(Debug, Args)]
struct AddDrillArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Unique name.
    #[arg(long)]
    name: String,
    /// Where the drill enters the bone, x,y,z in patient LPS mm.
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    entry: [f64; 3],
    /// Direction into the bone, x,y,z (normalised).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true, conflicts_with = "target", required_unless_present = "target")]
    direction: Option<[f64; 3]>,
    /// A point the drill aims at, x,y,z in LPS mm (the direction is entry -> target).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    target: Option<[f64; 3]>,
    /// Drilling depth from the entry, mm (default with --target: the distance to the target).
    #[arg(long)]
    length_mm: Option<f64>,
    /// Drill bit diameter, mm (default: the screw system's pilot drill).
    #[arg(long)]
    diameter_mm: Option<f64>,
    /// Screw system (a key of the screw catalogue: 1.5, 2.0, 2.3, 2.4).
    #[arg(long)]
    screw_system: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StructureKindArg {
    Nerve,
    Vessel,
    ToothRoot,
    Other,
}

#[derive(Debug, Args)]
struct AddStructureArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Unique name.
    #[arg(long)]
    name: String,
    /// What it is.
    #[arg(long, value_enum)]
    kind: StructureKindArg,
    /// Centre line: "x,y,z;x,y,z;..." in patient LPS mm (one point: a sphere).
    #[arg(long, value_parser = parse_points, allow_hyphen_values = true)]
    points: PointList,
    /// Radius of the tube around the centre line, mm.
    #[arg(long)]
    radius_mm: f64,
    /// Clearance drills must keep from the tube's surface, mm.
    #[arg(long)]
    margin_mm: f64,
}

#[derive(Debug, Args)]
struct AddLandmarkArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Unique name.
    #[arg(long)]
    name: String,
    /// Position, x,y,z in patient LPS mm.
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    point: [f64; 3],
}

#[derive(Debug, Args)]
struct AddGuideArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Unique name.
    #[arg(long)]
    name: String,
    /// Template: cutting_guide, drill_guide or combined_guide.
    #[arg(long)]
    template: String,
    /// Printer profile: sla, fdm or sls (it sets the bone offset and the clearances).
    #[arg(long, default_value = "sla")]
    printer: String,
    /// Planes the guide carries slots for: A,B.
    #[arg(long, value_delimiter = ',')]
    planes: Vec<String>,
    /// Drills the guide carries sleeves for: C,D.
    #[arg(long, value_delimiter = ',')]
    drills: Vec<String>,
    /// Direction in which the guide moves to seat onto the bone, x,y,z (with --footprint; without both, both are
    /// proposed).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true, requires = "footprint")]
    seating: Option<[f64; 3]>,
    /// The pad's outline, "x,y,z;x,y,z;x,y,z;..." in LPS mm (at least 3 points; with --seating).
    #[arg(long, value_parser = parse_points, allow_hyphen_values = true, requires = "seating")]
    footprint: Option<PointList>,
    /// With a proposed footprint: the CT to segment instead of the plan's.
    #[arg(long)]
    ct: Option<PathBuf>,
    /// A template parameter, name=value (repeatable; names end with their unit, e.g. pad_thickness_mm=3).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, f64)>,
    /// Leave the label out. By default every guide carries one: the case ID, its number and its side (and DRAFT until
    /// released), embossed where the pad or a slot housing's wall has room; the build says where there was none.
    #[arg(long)]
    no_label: bool,
    /// Letter height of the label, mm (capitals; at least 2.5).
    #[arg(long, default_value_t = guidesmith::plan::default_label_cap_height_mm(), conflicts_with = "no_label")]
    label_height_mm: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    #[value(alias = "landmarks")]
    Landmark,
    #[value(alias = "structures")]
    Structure,
    #[value(alias = "planes")]
    Plane,
    #[value(alias = "drills")]
    Drill,
    #[value(alias = "guides")]
    Guide,
}

impl From<KindArg> for ElementKind {
    fn from(k: KindArg) -> ElementKind {
        match k {
            KindArg::Landmark => ElementKind::Landmark,
            KindArg::Structure => ElementKind::Structure,
            KindArg::Plane => ElementKind::Plane,
            KindArg::Drill => ElementKind::Drill,
            KindArg::Guide => ElementKind::Guide,
        }
    }
}

#[derive(Debug, Args)]
struct ElementArgs {
    #[command(flatten)]
    file: PlanFile,
    /// Element kind: landmark, structure, plane, drill or guide.
    #[arg(value_enum)]
    kind: KindArg,
    /// Element name.
    name: String,
}

#[derive(Debug, Args)]
struct SetArgs {
    #[command(flatten)]
    element: ElementArgs,
    /// Field name (`blade_thickness_mm`, `normal`, `name`...) or a dotted path into a map
    /// (`parameters.pad_thickness_mm`).
    field: String,
    /// The new value as JSON (`1.5`, `[0,0,1]`, `null`, `"text"`); anything that is not JSON is a string.
    #[arg(allow_hyphen_values = true)]
    value: String,
}

#[derive(Debug, Args)]
struct MoveArgs {
    #[command(flatten)]
    element: ElementArgs,
    /// Offset, x,y,z in mm.
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    by: [f64; 3],
}

#[derive(Debug, Args)]
struct RotateArgs {
    #[command(flatten)]
    element: ElementArgs,
    /// Rotation axis, x,y,z (any length).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    axis: [f64; 3],
    /// Angle, degrees, counter-clockwise looking down the axis.
    #[arg(long, allow_hyphen_values = true)]
    deg: f64,
    /// Fixed point, x,y,z in LPS mm (default: the element's own point).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    pivot: Option<[f64; 3]>,
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    file: PlanFile,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
    /// Print one JSON document with every number instead of tables.
    #[arg(long)]
    json: bool,
}

/// A list of points parsed from "x,y,z;x,y,z".
#[derive(Clone, Debug)]
struct PointList(Vec<[f64; 3]>);

fn parse_points(text: &str) -> Result<PointList, String> {
    let points = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| numbers::<3>(p, "a point (x,y,z mm)"))
        .collect::<Result<Vec<_>, _>>()?;
    if points.is_empty() {
        return Err(format!("{text:?} holds no point; give \"x,y,z;x,y,z;...\""));
    }
    Ok(PointList(points))
}

/// A list of points parsed from "x,y,z;x,y,z".
pub(super) fn parse_point_list(text: &str) -> Result<Vec<[f64; 3]>, String> {
    parse_points(text).map(|p| p.0)
}

fn parse_param(text: &str) -> Result<(String, f64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not name=value"))?;
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} in {text:?} is not a number"))?;
    Ok((name.trim().to_string(), v))
}

/// Runs a plan subcommand.
pub fn run_plan(args: &PlanArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    match &args.command {
        PlanCommand::New(a) => run_new(a, progress),
        PlanCommand::AddPlane(a) => {
            let element = Element::Plane(CuttingPlane {
                name: a.name.clone(),
                point_mm: a.point,
                normal: a.normal,
                blade_thickness_mm: a.blade_mm,
                resected_side: match a.resect {
                    SideArg::Positive => ResectedSide::Positive,
                    SideArg::Negative => ResectedSide::Negative,
                    SideArg::None => ResectedSide::None,
                },
            });
            add(&a.file.plan, element)
        }
        PlanCommand::AddDrill(a) => {
            let element = Element::Drill(drill_from(a)?);
            add(&a.file.plan, element)
        }
        PlanCommand::AddStructure(a) => {
            let element = Element::Structure(Structure {
                name: a.name.clone(),
                kind: match a.kind {
                    StructureKindArg::Nerve => StructureKind::Nerve,
                    StructureKindArg::Vessel => StructureKind::Vessel,
                    StructureKindArg::ToothRoot => StructureKind::ToothRoot,
                    StructureKindArg::Other => StructureKind::Other,
                },
                points_mm: a.points.0.clone(),
                radius_mm: a.radius_mm,
                margin_mm: a.margin_mm,
            });
            add(&a.file.plan, element)
        }
        PlanCommand::AddLandmark(a) => {
            let element = Element::Landmark(Landmark {
                name: a.name.clone(),
                point_mm: a.point,
            });
            add(&a.file.plan, element)
        }
        PlanCommand::AddGuide(a) => add_guide(a, progress),
        PlanCommand::Reconstruct(a) => super::flap::run_reconstruct(a, progress),
        PlanCommand::Set(a) => {
            let e = &a.element;
            let value = serde_json::from_str(&a.value).unwrap_or_else(|_| serde_json::Value::String(a.value.clone()));
            let edit = Edit::Set {
                kind: e.kind.into(),
                name: e.name.clone(),
                field: a.field.clone(),
                value,
            };
            edit_element(e, edit, "set")
        }
        PlanCommand::Move(a) => {
            let e = &a.element;
            let edit = Edit::Translate {
                kind: e.kind.into(),
                name: e.name.clone(),
                delta_mm: a.by,
            };
            edit_element(e, edit, "moved")
        }
        PlanCommand::Rotate(a) => {
            let e = &a.element;
            let edit = Edit::Rotate {
                kind: e.kind.into(),
                name: e.name.clone(),
                axis: a.axis,
                angle_deg: a.deg,
                pivot_mm: a.pivot,
            };
            edit_element(e, edit, "rotated")
        }
        PlanCommand::Remove(e) => {
            let edit = Edit::Remove {
                kind: e.kind.into(),
                name: e.name.clone(),
            };
            edit_element(e, edit, "removed")
        }
        PlanCommand::Show(a) => run_show(a, false, progress),
        PlanCommand::Check(a) => run_show(a, true, progress),
        PlanCommand::Schema => {
            std::io::stdout().lock().write_all(json_schema().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Adds `element` to the plan at `path`.
fn add(path: &Path, element: Element) -> anyhow::Result<ExitCode> {
    let done = format!("added {} '{}'", element.kind().name(), element.name());
    apply(path, Edit::Add(element), &done)
}

/// Applies `edit` to the element `e` names, saying `verb` when done.
fn edit_element(e: &ElementArgs, edit: Edit, verb: &str) -> anyhow::Result<ExitCode> {
    let kind = ElementKind::from(e.kind).name();
    apply(&e.file.plan, edit, &format!("{verb} {kind} '{}'", e.name))
}

/// Loads the plan at `path`, applies `edit` (validated), writes it back atomically and says what was done.
fn apply(path: &Path, edit: Edit, done: &str) -> anyhow::Result<ExitCode> {
    let mut plan = Plan::load(path)?;
    plan.apply(edit)
        .with_context(|| format!("{}: edit refused", path.display()))?;
    plan.save(path)?;
    println!("{}: {done}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `plan add-guide`: with the seating direction and footprint given, or both proposed on the plan's bone.
fn add_guide(a: &AddGuideArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let mut spec = GuideSpec {
        bone: Default::default(),
        name: a.name.clone(),
        template: a.template.clone(),
        printer: a.printer.clone(),
        parameters: a.params.iter().cloned().collect(),
        planes: a.planes.clone(),
        drills: a.drills.clone(),
        seating_direction: a.seating.unwrap_or([0.0, 0.0, -1.0]),
        footprint: Footprint {
            outline_mm: a.footprint.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
        },
        label: (!a.no_label).then(|| GuideLabel {
            cap_height_mm: a.label_height_mm,
            ..GuideLabel::default()
        }),
    };
    if a.footprint.is_none() {
        let path = &a.file.plan;
        let plan = Plan::load(path)?;
        eprintln!("bone: opening the plan's bone to propose a seating direction and a footprint");
        let bone = open_bone(&plan, path, a.ct.as_deref(), progress)?;
        let proposal = propose_guide(&plan, &spec, &bone.mesh)?.proposal;
        let d = proposal.seating_direction;
        println!(
            "proposed seating direction ({:.3}, {:.3}, {:.3}) and a footprint of {} points, {:.0} mm^2 seen along it \
             ({} growth step(s))",
            d[0],
            d[1],
            d[2],
            proposal.outline_mm.len(),
            proposal.area_mm2,
            proposal.grow_steps
        );
        match &proposal.play {
            Some(play) if proposal.holds => println!(
                "  its contact surface holds: slides at most {:.2} mm, turns at most {:.2} deg",
                play.translation_mm.unwrap_or(f64::INFINITY),
                play.rotation_deg.unwrap_or(f64::INFINITY)
            ),
            _ => eprintln!(
                "warning: no footprint within reach holds the guide within the template's seating play; the \
                 proposal is the best found, and `build` will report how it is loose"
            ),
        }
        spec.seating_direction = proposal.seating_direction;
        spec.footprint.outline_mm = proposal.outline_mm;
    }
    add(&a.file.plan, Element::Guide(spec))
}

fn drill_from(a: &AddDrillArgs) -> anyhow::Result<DrillTrajectory> {
    let (direction, target_distance_mm) = match (a.direction, a.target) {
        (Some(d), _) => (d, None),
        (None, Some(t)) => {
            let d = [t[0] - a.entry[0], t[1] - a.entry[1], t[2] - a.entry[2]];
            let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            if len == 0.0 {
                bail!("--target {t:?} is the entry point itself; it gives no direction");
            }
            (d, Some(len))
        }
        (None, None) => bail!("give --direction X,Y,Z or --target X,Y,Z"),
    };
    let length_mm = match (a.length_mm, target_distance_mm) {
        (Some(l), _) | (None, Some(l)) => l,
        (None, None) => bail!("give --length-mm (the drilling depth from the entry)"),
    };
    let diameter_mm = match (a.diameter_mm, &a.screw_system) {
        (Some(d), _) => d,
        (None, Some(system)) => Catalogue::builtin().get(system)?.drill_diameter_mm,
        (None, None) => bail!("give --diameter-mm D or --screw-system NAME (its pilot drill diameter)"),
    };
    Ok(DrillTrajectory {
        name: a.name.clone(),
        entry_mm: a.entry,
        direction,
        length_mm,
        diameter_mm,
        screw_system: a.screw_system.clone(),
    })
}

fn run_new(a: &NewArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    if let Some(ct) = &a.ct {
        super::existing(ct)?;
    }
    for stl in &a.bone_stl {
        super::existing(stl)?;
    }
    if a.output.exists() && !a.force {
        bail!("{} exists; give --force to replace it", a.output.display());
    }
    let case_id = CaseId::new(&a.case).context("--case")?;
    if !a.bone_stl.is_empty() {
        return run_new_from_stl(a, case_id, progress);
    }
    let Some(ct) = &a.ct else {
        bail!("give --ct PATH (a CT to segment) or --bone-stl FILE (a bone segmented elsewhere)");
    };
    if a.seg.decimate_mm.is_some() {
        bail!("a plan records decimation as a fraction only: use --decimate-keep instead of --decimate-mm");
    }
    if a.seg.no_hu_range() {
        eprintln!("no --hu or --preset given: segmenting with the bone preset (226..3071 HU)");
    }
    let segmentation = Segmentation {
        recipe: a.seg.recipe_or_bone_preset()?,
        smooth_iterations: u32::try_from(a.seg.smooth).context("--smooth")?,
        decimate_keep_fraction: a.seg.decimate_keep,
    };
    eprintln!("loading the CT from {} and segmenting the bone", ct.display());
    let made = new_plan_from_ct(
        ct,
        a.seg.series.as_deref(),
        &a.seg.values.load_options(),
        case_id,
        segmentation,
        &a.output,
        progress,
    )?;
    for f in &made.skipped {
        eprintln!("skipped {}: {}", f.path.display(), f.reason);
    }
    for w in &made.warnings {
        eprintln!("warning: {w}");
    }
    made.plan.save(&a.output)?;
    let ct = made.plan.ct.as_ref();
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {}", a.output.display())?;
    writeln!(
        out,
        "  ct               {} (volume sha256 {})",
        ct.map(|c| c.path.as_str()).unwrap_or_default(),
        ct.map(|c| c.volume_sha256.as_str()).unwrap_or_default()
    )?;
    print_bone_summary(&mut out, &made.bone.mesh, made.bone.report.volume_mm3)?;
    Ok(ExitCode::SUCCESS)
}

/// `plan new --bone-stl`: the plan's bone is the given models, repaired; a CT, if given, is only recorded.
fn run_new_from_stl(a: &NewArgs, case_id: CaseId, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    if !a.seg.no_hu_range() || a.seg.smooth > 0 || a.seg.decimate_keep.is_some() || a.seg.decimate_mm.is_some() {
        bail!(
            "segmentation options (--hu, --preset, --smooth, --decimate-...) make a bone from the CT; with \
             --bone-stl the bone is the STL models: leave them out"
        );
    }
    let load_options = a.seg.values.load_options();
    let ct = a.ct.as_deref().map(|ct| (ct, a.seg.series.as_deref(), &load_options));
    let made = new_plan_from_stl(&a.bone_stl, ct, case_id, &a.output, progress)?;
    for f in &made.skipped {
        eprintln!("skipped {}: {}", f.path.display(), f.reason);
    }
    for w in &made.warnings {
        eprintln!("warning: {w}");
    }
    made.plan.save(&a.output)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {}", a.output.display())?;
    for (name, path, report) in &made.models {
        writeln!(out, "  bone model '{name}' from {}: {report}", path.display())?;
    }
    if let Some(ct) = &made.plan.ct {
        writeln!(
            out,
            "  ct               {} (volume sha256 {}; recorded, not segmented)",
            ct.path, ct.volume_sha256
        )?;
    }
    print_bone_summary(&mut out, &made.bone, made.bone.signed_volume_mm3())?;
    Ok(ExitCode::SUCCESS)
}

/// The bone's size and bounds after `plan new`.
fn print_bone_summary(out: &mut impl Write, mesh: &guidesmith::mesh::Mesh, volume_mm3: f64) -> std::io::Result<()> {
    writeln!(
        out,
        "  bone             {} triangles, {:.0} mm^3",
        mesh.triangles.len(),
        volume_mm3
    )?;
    if let Some(b) = mesh.bounding_box() {
        writeln!(
            out,
            "  bone bounds      x {:.1}..{:.1}  y {:.1}..{:.1}  z {:.1}..{:.1} mm (LPS)",
            b.min_mm[0], b.max_mm[0], b.min_mm[1], b.max_mm[1], b.min_mm[2], b.max_mm[2]
        )?;
    }
    Ok(())
}

/// The JSON document of `plan show --json`.
#[derive(Serialize)]
struct ShowDocument<'a> {
    plan: String,
    case_id: &'a str,
    plan_sha256: String,
    /// The design binding's hash today (what a new approval would be bound to).
    design_sha256: String,
    /// Every review with whether it still holds and, if not, what changed.
    approvals: Vec<ApprovalStatus<'a>>,
    /// Whether `build` would release the guides (`None`) or why not.
    release_refused: Option<String>,
    bone_origin: ShownOrigin,
    evaluation: &'a Evaluation,
}

/// Where the bone came from, as `plan show` prints it: by hash and name, never by path (a CT folder or model file is
/// often named after the patient).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum ShownOrigin {
    Segmentation { ct_volume_sha256: String },
    Models { names: Vec<String> },
}

fn shown_origin(plan: &Plan, origin: &BoneOrigin) -> ShownOrigin {
    match origin {
        BoneOrigin::Segmentation { .. } => ShownOrigin::Segmentation {
            ct_volume_sha256: plan.ct.as_ref().map(|c| c.volume_sha256.clone()).unwrap_or_default(),
        },
        BoneOrigin::Models { .. } => ShownOrigin::Models {
            names: plan.bone.models.iter().map(|m| m.name.clone()).collect(),
        },
    }
}

/// One review in `plan show --json`.
#[derive(Serialize)]
struct ApprovalStatus<'a> {
    #[serde(flatten)]
    approval: &'a Approval,
    current: bool,
    changes: Vec<String>,
}

/// Each review of `plan` against today's binding.
fn approval_statuses<'a>(plan: &'a Plan, now: &DesignBinding) -> Vec<ApprovalStatus<'a>> {
    plan.approvals
        .iter()
        .map(|a| {
            let (current, changes) = match a.state(now) {
                ApprovalState::Current => (true, Vec::new()),
                ApprovalState::Stale(changes) => (false, changes),
            };
            ApprovalStatus {
                approval: a,
                current,
                changes,
            }
        })
        .collect()
}

/// The reviews, whether each still holds, and whether the guides may be released.
fn print_approvals(out: &mut impl Write, plan: &Plan, now: &DesignBinding) -> std::io::Result<()> {
    writeln!(out, "design {} (what an approval is bound to)", now.sha256)?;
    for s in approval_statuses(plan, now) {
        let a = s.approval;
        writeln!(
            out,
            "approval {} {} ({}) at {}: {}{}",
            snake(&a.decision),
            a.reviewer,
            a.role.as_str(),
            a.at_utc,
            if s.current {
                "current".to_string()
            } else {
                format!("STALE: {}", s.changes.join("; "))
            },
            if a.comment.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", a.comment)
            }
        )?;
    }
    match release_approval(plan, now) {
        Ok(a) => writeln!(out, "release: allowed (approved by {} at {})", a.reviewer, a.at_utc),
        Err(e) => writeln!(out, "release: not allowed: {e}"),
    }
}

fn run_show(a: &ShowArgs, check_only: bool, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let path = &a.file.plan;
    let plan = Plan::load(path)?;
    // The CT's folder is not printed: hospital exports are often named after the patient.
    match (&plan.bone.segmentation, plan_ct_path(&plan, path, a.ct.as_deref())) {
        (Some(_), Some(_)) => {
            eprintln!("bone: loading the plan's CT, checking its hash, re-running the plan's segmentation")
        }
        _ => eprintln!("bone: reading the plan's {} STL model(s)", plan.bone.models.len()),
    }
    let bone = open_bone(&plan, path, a.ct.as_deref(), progress)?;
    let evaluation = evaluate(&plan, &bone.mesh, Catalogue::builtin())?;
    let now = DesignBinding::of(&plan);
    let mut out = std::io::stdout().lock();
    if a.json {
        let doc = ShowDocument {
            plan: path.display().to_string(),
            case_id: plan.case_id.as_str(),
            plan_sha256: plan.sha256(),
            design_sha256: now.sha256.clone(),
            approvals: approval_statuses(&plan, &now),
            release_refused: release_approval(&plan, &now).err().map(|e| e.to_string()),
            bone_origin: shown_origin(&plan, &bone.origin),
            evaluation: &evaluation,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        if !check_only {
            print_tables(&mut out, &plan, path, &bone.origin, &evaluation)?;
            print_approvals(&mut out, &plan, &now)?;
        }
        print_findings(&mut out, &evaluation)?;
    }
    Ok(if check_only && evaluation.has_errors() {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn p3(p: [f64; 3]) -> String {
    format!("({:.2}, {:.2}, {:.2})", p[0], p[1], p[2])
}

fn d3(d: [f64; 3]) -> String {
    format!("({:.3}, {:.3}, {:.3})", d[0], d[1], d[2])
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn print_tables(
    out: &mut impl Write,
    plan: &Plan,
    path: &Path,
    origin: &BoneOrigin,
    e: &Evaluation,
) -> std::io::Result<()> {
    writeln!(
        out,
        "plan {} (case {}, sha256 {})",
        path.display(),
        plan.case_id,
        plan.sha256()
    )?;
    let source = match shown_origin(plan, origin) {
        ShownOrigin::Segmentation { ct_volume_sha256 } => format!(
            "segmentation of the plan's CT (volume sha256 {}...)",
            ct_volume_sha256.chars().take(12).collect::<String>()
        ),
        ShownOrigin::Models { names } => format!("STL models {}", names.join(", ")),
    };
    let b = &e.bone.bounds;
    writeln!(
        out,
        "bone: {source}; {} triangles; x {:.1}..{:.1}, y {:.1}..{:.1}, z {:.1}..{:.1} mm (LPS)",
        e.bone.triangles, b.min_mm[0], b.max_mm[0], b.min_mm[1], b.max_mm[1], b.min_mm[2], b.max_mm[2]
    )?;
    for l in &plan.landmarks {
        writeln!(out, "landmark {:<16} {}", l.name, p3(l.point_mm))?;
    }
    for s in &plan.structures {
        writeln!(
            out,
            "structure {:<15} {:<10} {} points, radius {} mm, margin {} mm",
            s.name,
            snake(&s.kind),
            s.points_mm.len(),
            s.radius_mm,
            s.margin_mm
        )?;
    }
    if !e.planes.is_empty() {
        writeln!(out, "\nplanes (LPS mm)")?;
        writeln!(
            out,
            "  {:<16} {:<28} {:<24} {:>6} {:<9} {:>5} {:>10} {:>10}  centroid",
            "name", "point", "normal", "blade", "resect", "loops", "perim mm", "area mm2"
        )?;
        for p in &e.planes {
            writeln!(
                out,
                "  {:<16} {:<28} {:<24} {:>6.2} {:<9} {:>5} {:>10.2} {:>10.2}  {}",
                p.name,
                p3(p.point_mm),
                d3(p.normal),
                p.blade_thickness_mm,
                snake(&p.resected_side),
                p.loop_count,
                p.perimeter_mm,
                p.area_mm2,
                p.centroid_mm.map_or("-".to_string(), p3)
            )?;
        }
    }
    if !e.plane_pairs.is_empty() {
        writeln!(out, "\nplane pairs")?;
        writeln!(
            out,
            "  {:<33} {:>9} {:<9} {:>12} {:>12} {:>12}",
            "planes", "angle deg", "between", "centroids mm", "1st->2nd mm", "2nd->1st mm"
        )?;
        for p in &e.plane_pairs {
            writeln!(
                out,
                "  {:<33} {:>9.2} {:<9} {:>12} {:>12} {:>12}",
                format!("{} / {}", p.first, p.second),
                p.angle_deg,
                snake(&p.between),
                opt(p.centroid_distance_mm, 2),
                opt(p.first_centroid_to_second_plane_mm, 2),
                opt(p.second_centroid_to_first_plane_mm, 2)
            )?;
        }
    }
    if !e.drills.is_empty() {
        writeln!(out, "\ndrills (LPS mm; t = mm along the drill from its planned entry)")?;
        for d in &e.drills {
            writeln!(
                out,
                "  {:<16} {:<13} entry {} dir {} length {:.2} mm, diameter {:.2} mm",
                d.name,
                snake(&d.kind),
                p3(d.planned_entry_mm),
                d3(d.direction),
                d.length_mm,
                d.diameter_mm
            )?;
            let cortices: Vec<String> = d.intervals.iter().map(|i| format!("{:.2}", i.length_mm)).collect();
            writeln!(
                out,
                "      bone entry {} (t {}, incidence {} deg), exit {} (t {}); bicortical {} mm; bone in length {:.2} \
                 mm; tip past exit {} mm; bone stretches [{}] mm",
                d.entry.map_or("-".to_string(), |s| p3(s.point_mm)),
                opt(d.entry.map(|s| s.t_mm), 2),
                opt(d.entry.map(|s| s.incidence_deg), 1),
                d.exit.map_or("-".to_string(), |s| p3(s.point_mm)),
                opt(d.exit.map(|s| s.t_mm), 2),
                opt(d.bicortical_length_mm, 2),
                d.bone_within_length_mm,
                opt(d.tip_past_exit_mm, 2),
                cortices.join(", ")
            )?;
            if let Some(s) = &d.screw {
                writeln!(
                    out,
                    "      screw system {} (screw {} mm, pilot {} mm), suggested length {} mm",
                    s.system,
                    s.screw_diameter_mm,
                    s.drill_diameter_mm,
                    opt(s.suggested_length_mm, 0)
                )?;
            }
            for c in &d.clearances {
                writeln!(
                    out,
                    "      clearance to {}: {:.2} mm (axis {:.2} mm from its centre line; margin {} mm){}",
                    c.structure,
                    c.clearance_mm,
                    c.axis_distance_mm,
                    c.margin_mm,
                    if c.within_margin { "  WITHIN MARGIN" } else { "" }
                )?;
            }
            for x in &d.plane_crossings {
                writeln!(
                    out,
                    "      crosses plane {} in bone at t {:.2}..{:.2} mm",
                    x.plane, x.start_t_mm, x.end_t_mm
                )?;
            }
        }
    }
    let close: Vec<_> = e
        .drill_pairs
        .iter()
        .filter(|p| p.clearance_mm < CLOSE_PAIR_SHOWN_MM)
        .collect();
    if !close.is_empty() {
        writeln!(
            out,
            "\ndrill pairs less than {CLOSE_PAIR_SHOWN_MM} mm apart (--json lists every pair)"
        )?;
        for p in close {
            writeln!(
                out,
                "  {:<33} axes {:.2} mm apart, clearance {:.2} mm{}",
                format!("{} / {}", p.first, p.second),
                p.axis_distance_mm,
                p.clearance_mm,
                if p.collide { "  COLLIDE" } else { "" }
            )?;
        }
    }
    if !e.guides.is_empty() {
        writeln!(out, "\nguides")?;
        for (g, spec) in e.guides.iter().zip(&plan.guides) {
            writeln!(
                out,
                "  {:<16} {:<16} printer {:<4} planes [{}] drills [{}] {}",
                g.name,
                g.template,
                g.printer,
                spec.planes.join(", "),
                spec.drills.join(", "),
                if g.resolved {
                    "template, printer, parameters and references resolved"
                } else {
                    "NOT RESOLVED (see the findings)"
                }
            )?;
        }
    }
    writeln!(out)
}

fn print_findings(out: &mut impl Write, e: &Evaluation) -> std::io::Result<()> {
    for f in &e.findings {
        let tag = match f.severity {
            Severity::Error => "ERROR  ",
            Severity::Warning => "warning",
        };
        let place = f
            .place_mm
            .map(|p| format!(" at ({:.1}, {:.1}, {:.1}) mm", p[0], p[1], p[2]))
            .unwrap_or_default();
        writeln!(out, "{tag} {:<24} {}: {}{place}", f.element, f.code, f.message)?;
    }
    writeln!(
        out,
        "{} errors, {} warnings",
        e.count(Severity::Error),
        e.count(Severity::Warning)
    )
}
