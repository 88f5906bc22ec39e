//! `guidesmith model PLAN -o DIR`: printable anatomical models of the case (the region as it is, after the planned
//! resection, and the resected segment), `guidesmith gltf PLAN -o FILE.glb`: the whole plan for other viewers, and
//! `guidesmith report PLAN -o report.pdf`: the plan report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use guidesmith::case::{
    build_guides, make_models, make_models_with, make_report, open_bone, open_donor, plan_glb, write_models,
    GuideBones, ModelOptions, DEFAULT_MODEL_MARGIN_MM,
};
use guidesmith::mesh::Mesh;
use guidesmith::plan::Plan;
use guidesmith::progress::Progress;

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// Output folder for the models' STL files.
    #[arg(short, long)]
    output: PathBuf,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
    /// Bone kept around everything the plan places (guide footprints, planes, drills), mm.
    #[arg(long, default_value_t = DEFAULT_MODEL_MARGIN_MM)]
    margin_mm: f64,
    /// Stand the region and the planned state on a flat base this thick, mm (2-20): a plate below the bone joined to
    /// it by posts, the case label in front; the pieces of a resected jaw stay in their planned places.
    #[arg(long)]
    base_mm: Option<f64>,
}

pub fn run_model(args: &ModelArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let bone = open_bone(&plan, &args.plan, args.ct.as_deref(), progress)?.mesh;
    let donor = open_donor(&plan, &args.plan, None, progress)?;
    let options = ModelOptions {
        margin_mm: args.margin_mm,
        base_mm: args.base_mm,
    };
    let models = make_models_with(&plan, GuideBones::of(&plan, &bone, donor.as_ref()), &options, progress)?;
    let paths = write_models(&args.output, plan.case_id.as_str(), &models)?;
    for (m, path) in models.iter().zip(&paths) {
        println!(
            "  {:<9} {:>7} triangles  {:>9.0} mm^3  {} piece(s), closed and manifold: {}  {}  ({}; label: {})",
            m.name,
            m.mesh.triangles.len(),
            m.mesh.signed_volume_mm3(),
            m.report.components,
            m.report.is_valid(),
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            m.description,
            m.label
                .as_ref()
                .map_or("none, no flat face has room".to_string(), |l| format!(
                    "{} (+{:.3} mm^3)",
                    l.lines.join(" / "),
                    l.added_mm3
                ))
        );
        if let Some(b) = &m.base {
            println!(
                "            on a flat base {:.1} mm thick (underside at z = {:.1} mm), joined by {} posts",
                b.thickness_mm, b.floor_z_mm, b.posts
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct GltfArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// The glTF binary to write (.glb).
    #[arg(short, long)]
    output: PathBuf,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
}

/// `guidesmith gltf PLAN -o FILE.glb`: the bone, structures, planes, drills, the guides that pass their checks and
/// the anatomical models in one glTF binary.
pub fn run_gltf(args: &GltfArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let (plan, bone, donor, guides) = built_case(&args.plan, args.ct.as_deref(), progress)?;
    let bones = GuideBones::of(&plan, &bone, donor.as_ref());
    let models = make_models(&plan, bones.clone(), DEFAULT_MODEL_MARGIN_MM, progress)?;
    let bytes = plan_glb(&plan, bones, &guides, &models)?;
    guidesmith::atomic::write_atomic(&args.output, |w| w.write_all(&bytes))
        .with_context(|| format!("writing {}", args.output.display()))?;
    let failed = guides
        .guides
        .iter()
        .filter(|g| g.built().is_none_or(|(_, c)| !c.findings.is_empty()));
    for g in failed {
        println!(
            "  guide {} is not in the glTF: it was not built or failed a check",
            g.name
        );
    }
    println!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// The report to write (PDF).
    #[arg(short, long)]
    output: PathBuf,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
}

/// `guidesmith report PLAN -o report.pdf`: the plan, its numbers, its guides' checks and views, the hashes and the
/// reviews, as PDF. Guides that fail are reported with their findings (the report is also for plans in design).
pub fn run_report(args: &ReportArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let (plan, bone, donor, guides) = built_case(&args.plan, args.ct.as_deref(), progress)?;
    let bytes = make_report(&plan, GuideBones::of(&plan, &bone, donor.as_ref()), &guides, progress)?;
    guidesmith::atomic::write_atomic(&args.output, |w| w.write_all(&bytes))
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// The plan, its bone, its reconstruction's donor and its guides built and checked (their summary printed), for the
/// documents of a case.
fn built_case(
    plan_path: &std::path::Path,
    ct: Option<&std::path::Path>,
    progress: &dyn Progress,
) -> anyhow::Result<(Plan, Mesh, Option<Mesh>, guidesmith::case::CaseGuides)> {
    let plan = Plan::load(plan_path)?;
    let bone = open_bone(&plan, plan_path, ct, progress)?.mesh;
    let donor = open_donor(&plan, plan_path, None, progress)?;
    let guides = build_guides(&plan, GuideBones::of(&plan, &bone, donor.as_ref()), None, progress)?;
    super::build::print_summary(&guides);
    Ok((plan, bone, donor, guides))
}
