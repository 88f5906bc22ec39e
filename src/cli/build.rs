//! `guidesmith build PLAN -o OUT`: every guide of a plan, checked, written for the print lab with review images.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use guidesmith::case::{
    build_guides_for, open_bone, open_donor, release_for, write_guides, CaseGuides, GuideBones, GuideOutcome,
};
use guidesmith::export::Release;
use guidesmith::finding::Finding;
use guidesmith::plan::Plan;
use guidesmith::progress::Progress;

use super::FAILED;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// Output folder for the STL, 3MF, manifest and renders.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Build every guide for this printer profile (sla, fdm, sls) instead of the one the plan names; the manifest
    /// records both. Only for drafts: the surgeon approved the guides for the plan's printer.
    #[arg(long)]
    printer: Option<String>,
}

/// Where the plan's CT is, and whether drafts are asked for: the same for `build` and `bundle`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    pub ct: Option<PathBuf>,
    /// Without a surgeon's current approval, make drafts: file names and manifest say DRAFT (not for use on a
    /// patient).
    #[arg(long)]
    pub draft: bool,
}

/// Prints one finding as the CLI shows them.
pub fn print_finding(f: &Finding) {
    let place = f
        .place_mm
        .map(|p| format!(" at ({:.1}, {:.1}, {:.1}) mm", p[0], p[1], p[2]))
        .unwrap_or_default();
    println!("      FAILED {}: {}{place}", f.code, f.message);
}

/// Prints one line per guide, its checks and its findings.
pub fn print_summary(result: &CaseGuides) {
    for planned in &result.guides {
        let (g, c) = match &planned.outcome {
            GuideOutcome::Refused(f) => {
                println!("  {:<20} refused", planned.name);
                print_finding(f);
                continue;
            }
            GuideOutcome::Built { guide, check } => (guide, check),
        };
        let total: f64 = g.timings_s.iter().map(|t| t.1).sum();
        println!(
            "  {:<20} {:>7} triangles  {:>8.0} mm^3  built in {:.2} s  printer {}  {}",
            g.name,
            g.mesh.triangles.len(),
            g.mesh.signed_volume_mm3(),
            total,
            g.params.printer,
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
        if let Some(play) = &c.seating {
            println!("      seating: {}", seating_text(play));
        }
        if let Some(l) = &c.label {
            println!("      label {}", l.summary());
        }
        for f in &c.findings {
            print_finding(f);
        }
    }
}

/// One line on a guide's seating play.
fn seating_text(play: &guidesmith::guide::seating::SeatingPlay) -> String {
    let v = |a: [f64; 3]| format!("({:.2}, {:.2}, {:.2})", a[0], a[1], a[2]);
    let slide = match play.translation_mm {
        Some(mm) => format!("slides at most {mm:.2} mm (towards {})", v(play.translation_direction)),
        None => format!(
            "slides without limit (more than {} mm towards {})",
            guidesmith::guide::seating::TRANSLATION_LIMIT_MM,
            v(play.translation_direction)
        ),
    };
    let turn = match play.rotation_deg {
        Some(deg) => format!("turns at most {deg:.2} deg (about {})", v(play.rotation_axis)),
        None => format!(
            "turns without limit (more than {} deg about {})",
            guidesmith::guide::seating::ROTATION_LIMIT_DEG,
            v(play.rotation_axis)
        ),
    };
    format!("{slide}, {turn}; {} contact points", play.contact_points)
}

pub fn run_build(args: &BuildArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    // Refused before the CT is loaded: without a current approval there is nothing to release.
    let release = release_for(&plan, args.printer.as_deref(), args.source.draft)?;
    match &release {
        Release::Approved {
            surgeon,
            at_utc,
            design_sha256,
        } => println!("release: approved by {surgeon} (surgeon) at {at_utc}; design {design_sha256}"),
        Release::Draft { design_sha256 } => {
            println!("release: DRAFT (not approved; not for use on a patient); design {design_sha256}")
        }
    }
    let bone = open_bone(&plan, &args.plan, args.source.ct.as_deref(), progress)?.mesh;
    let donor = open_donor(&plan, &args.plan, None, progress)?;
    let bones = GuideBones::of(&plan, &bone, donor.as_ref());
    let result = build_guides_for(&plan, bones.clone(), args.printer.as_deref(), &release, progress)?;
    print_summary(&result);
    if !result.all_passed() {
        eprintln!("error: guides were refused or failed their checks; nothing was written");
        return Ok(ExitCode::from(FAILED));
    }
    let summary = write_guides(&args.output, &plan, bones, &result, &release, progress)?;
    println!(
        "wrote {} files and manifest.json to {}",
        summary.files.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
