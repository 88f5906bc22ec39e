//! `guidesmith build PLAN -o OUT`: every guide of a plan, checked, written for the print lab with renders.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use guidesmith::guide::pipeline::{build_plan_guides, write_plan_guides, PipelineError, PlanGuides, DEFAULT_PRINTER};
use guidesmith::plan::{plan_bone, Plan};
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
    let bone = plan_bone(&plan, &args.plan, args.ct.as_deref(), progress)?.mesh;
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
