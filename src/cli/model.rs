//! `guidesmith model PLAN -o DIR`: printable anatomical models of the case (the region as it is, after the planned
//! resection, and the resected segment).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use guidesmith::case::{make_models, open_bone, write_models, DEFAULT_MODEL_MARGIN_MM};
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
}

pub fn run_model(args: &ModelArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let bone = open_bone(&plan, &args.plan, args.ct.as_deref(), progress)?.mesh;
    let models = make_models(&plan, &bone, args.margin_mm, progress)?;
    let paths = write_models(&args.output, plan.case_id.as_str(), &models)?;
    for (m, path) in models.iter().zip(&paths) {
        println!(
            "  {:<9} {:>7} triangles  {:>9.0} mm^3  {} piece(s), closed and manifold: {}  {}  ({})",
            m.name,
            m.mesh.triangles.len(),
            m.mesh.signed_volume_mm3(),
            m.report.components,
            m.report.is_valid(),
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            m.description
        );
    }
    Ok(ExitCode::SUCCESS)
}
