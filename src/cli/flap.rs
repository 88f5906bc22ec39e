//! `guidesmith plan reconstruct`: proposes (or lays out again) the plan's free-flap reconstruction and its donor
//! guide, prints every measurement, and records them in the plan when nothing refuses them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use guidesmith::case::{
    make_donor, open_bone, propose_reconstruction, recorded_donor, DonorBone, DonorInput, FlapProposal, FlapRequest,
    DONOR_GUIDE_NAME,
};
use guidesmith::plan::{ContourSource, Edit, Plan};
use guidesmith::progress::Progress;

use super::segment::parse_point;

#[derive(Debug, Args)]
pub(super) struct ReconstructArgs {
    /// The plan (JSON); rewritten atomically when the reconstruction holds.
    plan: PathBuf,
    /// The resection planes the flap bridges, in contour order (default: the recorded ones).
    #[arg(long, value_delimiter = ',')]
    planes: Vec<String>,
    /// The donor's CT (the leg): segmented at the bone preset, the two largest pieces kept (default: the recorded
    /// donor).
    #[arg(long, conflicts_with = "donor_stl")]
    donor_ct: Option<PathBuf>,
    /// The donor as a bone STL segmented elsewhere (repaired as `plan new --bone-stl` does).
    #[arg(long)]
    donor_stl: Option<PathBuf>,
    /// A point on the donor's shaft, x,y,z in donor mm (when its CT holds another bone of its size).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    donor_point: Option<[f64; 3]>,
    /// Number of segments, 1 to 4 (default: the fewest within the deviation limits).
    #[arg(long)]
    segments: Option<usize>,
    /// Segment ends on the contour, "x,y,z;..." (segments + 1 points; default: proposed).
    #[arg(long, value_parser = parse_points, allow_hyphen_values = true)]
    ends: Option<Points>,
    /// Keep the recorded segment ends and lay the segments out again (after a setting changed).
    #[arg(long, conflicts_with_all = ["ends", "segments"])]
    keep_ends: bool,
    /// The target contour, "x,y,z;..." from the first plane to the second (default: the recorded one when edited,
    /// else the centre line of the bone the resection removes).
    #[arg(long, value_parser = parse_points, allow_hyphen_values = true)]
    contour: Option<Points>,
    /// Shortest segment, mm (default 20 or recorded).
    #[arg(long)]
    min_length_mm: Option<f64>,
    /// Largest deviation from the contour, mm (default 2 or recorded).
    #[arg(long)]
    max_deviation_mm: Option<f64>,
    /// Largest mean deviation, mm (default 1 or recorded).
    #[arg(long)]
    max_mean_deviation_mm: Option<f64>,
    /// Smallest distance between neighbouring segments on the donor, mm (default 1.5 or recorded).
    #[arg(long)]
    gap_mm: Option<f64>,
    /// Largest gap between bone ends on the mandible, mm (default 1 or recorded).
    #[arg(long)]
    max_gap_mm: Option<f64>,
    /// Donor kept at the distal tip, mm (default 70 or recorded).
    #[arg(long)]
    keep_distal_mm: Option<f64>,
    /// Donor kept at the proximal tip, mm (default 70 or recorded).
    #[arg(long)]
    keep_proximal_mm: Option<f64>,
    /// Rotation of the segments about their axes, deg: at 0 the fibula's lateral surface faces lingual and its
    /// pedicle buccal (default 0 or recorded).
    #[arg(long, allow_hyphen_values = true)]
    pedicle_deg: Option<f64>,
    /// The donor leg's side, `right` or `left` (default: the side away from the rest of the leg, refused when unclear,
    /// as for a fibula-only STL).
    #[arg(long, value_parser = ["right", "left"])]
    donor_side: Option<String>,
    /// Donor saw blade, mm (default: the first resection plane's, or recorded).
    #[arg(long)]
    blade_mm: Option<f64>,
    /// First segment's start face from the distal tip, mm (default: the least that keeps --keep-distal-mm).
    #[arg(long)]
    distal_offset_mm: Option<f64>,
    /// Printer of the donor guide (default sla, or the recorded guide's).
    #[arg(long)]
    printer: Option<String>,
    /// The plan's CT, if not where the plan says.
    #[arg(long)]
    ct: Option<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
}

/// Points given as "x,y,z;x,y,z" (one value: a bare `Vec` would make clap take the option many times).
#[derive(Clone, Debug)]
pub(super) struct Points(Vec<[f64; 3]>);

fn parse_points(text: &str) -> Result<Points, String> {
    super::plan::parse_point_list(text).map(Points)
}

/// The donor as the arguments give it, else as the plan records it.
fn donor_bone(a: &ReconstructArgs, plan: &Plan, progress: &dyn Progress) -> anyhow::Result<DonorBone> {
    let input = match (&a.donor_ct, &a.donor_stl) {
        (Some(ct), _) => Some(DonorInput::Ct(ct.clone())),
        (None, Some(stl)) => Some(DonorInput::Stl(stl.clone())),
        (None, None) => None,
    };
    if let Some(input) = input {
        return Ok(make_donor(&input, &a.plan, progress)?);
    }
    recorded_donor(plan, &a.plan, None, progress)?.with_context(|| {
        format!(
            "{}: the plan has no reconstruction yet: give the donor with --donor-ct LEG_CT or --donor-stl FIBULA.stl",
            a.plan.display()
        )
    })
}

/// Runs `plan reconstruct`.
pub(super) fn run_reconstruct(a: &ReconstructArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let path = &a.plan;
    let mut plan = Plan::load(path)?;
    let recorded = plan.reconstruction.clone();
    let planes = if !a.planes.is_empty() {
        a.planes.clone()
    } else if let Some(r) = &recorded {
        r.planes.clone()
    } else {
        anyhow::bail!(
            "{}: name the resection planes the flap bridges with --planes FIRST,SECOND",
            path.display()
        );
    };
    let mut request = FlapRequest::for_plan(&plan, planes);
    let p = &mut request.parameters;
    for (field, value) in [
        (&mut p.min_segment_length_mm, a.min_length_mm),
        (&mut p.max_deviation_mm, a.max_deviation_mm),
        (&mut p.max_mean_deviation_mm, a.max_mean_deviation_mm),
        (&mut p.gap_mm, a.gap_mm),
        (&mut p.max_gap_mm, a.max_gap_mm),
        (&mut p.keep_distal_mm, a.keep_distal_mm),
        (&mut p.keep_proximal_mm, a.keep_proximal_mm),
        (&mut p.pedicle_deg, a.pedicle_deg),
        (&mut p.blade_thickness_mm, a.blade_mm),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    if a.distal_offset_mm.is_some() {
        p.distal_offset_mm = a.distal_offset_mm;
    }
    if let Some(c) = &a.contour {
        request.contour_mm = Some(c.0.clone());
    }
    request.ends_mm = match (&a.ends, a.keep_ends, &recorded) {
        (Some(e), _, _) => Some(e.0.clone()),
        (None, true, Some(r)) => {
            let mut e: Vec<[f64; 3]> = r.segments.iter().map(|s| s.start_mm).collect();
            e.extend(r.segments.last().map(|s| s.end_mm));
            Some(e)
        }
        (None, true, None) => anyhow::bail!("--keep-ends: the plan has no reconstruction yet"),
        _ => None,
    };
    if let Some(printer) = &a.printer {
        request.printer = printer.clone();
    }
    request.count = a.segments;
    request.donor_point_mm = a.donor_point;
    request.donor_right = a.donor_side.as_deref().map(|s| s == "right");
    if !a.json {
        eprintln!("bone: opening the plan's bone and the donor");
    }
    let mandible = open_bone(&plan, path, a.ct.as_deref(), progress)?;
    let donor = donor_bone(a, &plan, progress)?;
    let proposal = propose_reconstruction(&plan, &mandible.mesh, &donor, &request, progress)?;
    if a.json {
        let doc = serde_json::json!({
            "reconstruction": proposal.reconstruction,
            "measures": proposal.measures,
            "guide": proposal.guide,
            "findings": proposal.findings,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_proposal(&proposal);
    }
    if proposal.verified.is_none() {
        eprintln!(
            "warning: the fibula guide did not pass every check when it was built here; `guidesmith build` lists \
             what fails"
        );
    }
    if !proposal.findings.is_empty() {
        for f in &proposal.findings {
            eprintln!("error: {f}");
        }
        eprintln!("{}: not changed: the reconstruction is refused", path.display());
        return Ok(ExitCode::from(1));
    }
    record(&mut plan, proposal).with_context(|| format!("{}: reconstruction refused", path.display()))?;
    plan.save(path)?;
    if !a.json {
        println!(
            "{}: reconstruction and guide '{DONOR_GUIDE_NAME}' recorded",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the proposal into the plan as one edit: the reconstruction and its donor guide, replacing the old ones.
fn record(plan: &mut Plan, proposal: FlapProposal) -> anyhow::Result<()> {
    plan.apply(Edit::SetReconstruction {
        reconstruction: Some(Box::new(proposal.reconstruction)),
        donor_guide: Some(Box::new(proposal.guide)),
    })?;
    Ok(())
}

fn print_proposal(proposal: &FlapProposal) {
    let r = &proposal.reconstruction;
    let m = &proposal.measures;
    let axis = r.donor.axis();
    println!(
        "donor: fibula {:.1} mm long, radius {:.2} mm, lateral ({:.3}, {:.3}, {:.3})",
        axis.length_mm(),
        axis.radius_mm,
        r.donor.lateral[0],
        r.donor.lateral[1],
        r.donor.lateral[2]
    );
    println!(
        "contour: {} points ({}), {} segment(s)",
        r.contour.points_mm.len(),
        match r.contour.source {
            ContourSource::Original => "the removed bone's centre line",
            ContourSource::Edited => "given",
        },
        r.segments.len()
    );
    println!(
        "{:<4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "seg", "length mm", "buccal mm", "lingual mm", "wedge0 deg", "wedge1 deg", "distal mm", "proximal mm"
    );
    for (s, sm) in r.segments.iter().zip(&m.segments) {
        println!(
            "{:<4} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            s.name,
            sm.length_mm,
            sm.buccal_length_mm,
            sm.lingual_length_mm,
            sm.start_wedge_deg,
            sm.end_wedge_deg,
            sm.from_distal_tip_mm,
            sm.from_proximal_tip_mm
        );
    }
    println!(
        "deviation from the contour: mean {:.2} mm, max {:.2} mm at ({:.1}, {:.1}, {:.1})",
        m.deviation.mean_mm, m.deviation.max_mm, m.deviation.at_mm[0], m.deviation.at_mm[1], m.deviation.at_mm[2]
    );
    let list = |v: &[f64]| v.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(", ");
    println!(
        "gaps: between segments [{}] mm, at the stumps [{}] mm, on the donor [{}] mm",
        list(&m.junction_gaps_mm),
        list(&m.stump_gaps_mm),
        list(&m.donor_gaps_mm)
    );
    println!(
        "donor left: {:.1} mm distal, {:.1} mm proximal; guide '{}' with {} slot(s) and {} fixation hole(s)",
        m.left_distal_mm,
        m.left_proximal_mm,
        proposal.guide.name,
        proposal.guide.planes.len(),
        proposal.guide.drills.len()
    );
}
