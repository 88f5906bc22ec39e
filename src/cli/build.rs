//! `guidesmith build PLAN -o OUT`: every guide of a plan, checked, written for the print lab with renders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use guidesmith::bone::{self, SurfaceOptions};
use guidesmith::guide::pipeline::{build_plan_guides, write_plan_guides, PipelineError, PlanGuides, DEFAULT_PRINTER};
use guidesmith::mesh::Mesh;
use guidesmith::plan::{sha256_hex, Plan};
use guidesmith::progress::Progress;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// Output folder for the STL, 3MF, manifest and renders.
    #[arg(short, long)]
    output: PathBuf,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
    /// Printer profile (sla, fdm, sls): bone offset and clearances.
    #[arg(long, default_value = DEFAULT_PRINTER)]
    printer: String,
}

/// The plan's bone: its segmentation re-run on its CT (hash verified), or its STL models (hashes verified).
pub fn plan_bone(plan: &Plan, plan_path: &Path, ct: Option<&Path>, progress: &dyn Progress) -> anyhow::Result<Mesh> {
    let base = plan_path.parent().unwrap_or(Path::new("."));
    if let (Some(reference), Some(seg)) = (&plan.ct, &plan.bone.segmentation) {
        let path = ct.map(Path::to_path_buf).unwrap_or_else(|| base.join(&reference.path));
        let (volume, _) = guidesmith::volume::load(&path, None, progress)
            .with_context(|| format!("loading the plan's CT from {}", path.display()))?;
        reference
            .verify(&volume)
            .with_context(|| format!("the CT at {}", path.display()))?;
        let options = SurfaceOptions {
            smooth_iterations: seg.smooth_iterations as usize,
            decimate_keep_fraction: seg.decimate_keep_fraction,
            ..SurfaceOptions::default()
        };
        return Ok(bone::extract_bone(&volume, &seg.recipe, &options, progress)?.mesh);
    }
    let mut merged = Mesh::default();
    for model in &plan.bone.models {
        let path = base.join(&model.path);
        let bytes = std::fs::read(&path).with_context(|| format!("reading bone model {}", path.display()))?;
        anyhow::ensure!(
            sha256_hex(&bytes) == model.sha256,
            "{}: the bone model differs from the one the plan was made on (SHA-256 mismatch)",
            path.display()
        );
        merged.merge(&guidesmith::mesh::read_stl_file(&path)?)?;
    }
    anyhow::ensure!(
        !merged.triangles.is_empty(),
        "the plan has neither a CT segmentation nor bone models"
    );
    Ok(merged)
}

/// Prints one line per guide and its checks.
pub fn print_summary(result: &PlanGuides) {
    for (g, c) in result.guides.iter().zip(&result.checks) {
        let total: f64 = g.timings_s.iter().map(|t| t.1).sum();
        println!(
            "  {:<20} {:>7} triangles  {:>8.0} mm^3  built in {:.2} s  {}",
            g.name,
            g.mesh.triangles.len(),
            g.mesh.signed_volume_mm3(),
            total,
            if c.passed { "all checks passed" } else { "FAILED" }
        );
        for s in &c.slots {
            println!(
                "      slot {:<12} mid-plane {:.4} mm / {:.4} deg from plan, width {:.3} mm, guidance {:.1} mm",
                s.plane, s.offset_mm, s.angle_deg, s.width_mm, s.guidance_mm
            );
        }
        for ch in &c.channels {
            println!(
                "      channel {:<9} axis {:.4} mm / {:.4} deg from plan, bore {:.2} mm",
                ch.drill, ch.offset_mm, ch.angle_deg, ch.bore_diameter_mm
            );
        }
        println!(
            "      contact: gap {:.3} mm min (offset {:.2} mm, {:.0} % of the underside at the offset +-0.05), \
             thinnest wall {:.2} mm, one piece: {}, closed and manifold: {}",
            c.contact.min_gap_mm,
            c.contact.bone_offset_mm,
            100.0 * c.contact.at_offset_fraction,
            c.walls.thinnest_mm,
            c.mesh.components == 1,
            c.mesh.is_valid()
        );
        for f in &c.failures {
            println!("      FAILED: {f}");
        }
    }
}

pub fn run_build(args: &BuildArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let bone = plan_bone(&plan, &args.plan, args.ct.as_deref(), progress)?;
    let result = build_plan_guides(&plan, &bone, &args.printer, progress)?;
    print_summary(&result);
    match write_plan_guides(&args.output, &plan, &bone, &result) {
        Ok(manifest) => {
            println!(
                "wrote {} files and manifest.json to {}",
                manifest.files.len(),
                args.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(PipelineError::Checks(_)) => {
            eprintln!("error: guides failed their checks; nothing was written");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
