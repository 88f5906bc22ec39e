//! Times a free-flap reconstruction in process: the proposal (`case::propose_reconstruction`: contour, ends, donor
//! axis, layout, fixation, the donor guide built and checked) and the build of every guide of the plan with it
//! recorded (the plan's own; the donor guide is the one the proposal verified), on bones already opened.
//!
//! `cargo run --release --example flap_timing -- PLAN LEG_CT [SEGMENTS]`: PLAN is a plan with resection planes
//! `first` and `second` (and any mandible guides); it is not changed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use guidesmith::case::{
    build_guides_reusing, make_donor, open_bone, propose_reconstruction, DonorInput, FlapRequest, GuideBones,
};
use guidesmith::plan::{Edit, Plan};
use guidesmith::progress::NoProgress;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let plan_path = PathBuf::from(args.next().context("PLAN")?);
    let leg = PathBuf::from(args.next().context("LEG_CT")?);
    let count: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let mut plan = Plan::load(&plan_path)?;
    // Proposed afresh: a recorded reconstruction and its donor guide are taken out first.
    plan.apply(Edit::SetReconstruction {
        reconstruction: None,
        donor_guide: None,
    })?;
    let mandible = open_bone(&plan, &plan_path, None, &NoProgress)?.mesh;
    let t = Instant::now();
    let donor = make_donor(&DonorInput::Ct(leg), &plan_path, &NoProgress)?;
    let load_s = t.elapsed().as_secs_f64();
    // As `plan reconstruct` asks: the blade of the first resection plane, the deviation limits of the 3-segment test.
    let mut request = FlapRequest::for_plan(&plan, vec!["first".into(), "second".into()]);
    request.count = Some(count);
    request.parameters.max_deviation_mm = 3.5;
    request.parameters.max_mean_deviation_mm = 2.0;
    request.donor_right = Some(true);
    // The window's look at the segments while a plane moves: the same proposal without the donor guide's build.
    let quick = FlapRequest {
        build_donor_guide: false,
        ..request.clone()
    };
    for run in 0..3 {
        let t = Instant::now();
        let preview = propose_reconstruction(&plan, &mandible, &donor, &quick, &NoProgress)?;
        anyhow::ensure!(preview.verified.is_none(), "the quick proposal built the guide");
        println!(
            "run {run}: proposal without the donor guide (the window's, as the planes move) {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    for run in 0..3 {
        let t = Instant::now();
        let proposal = propose_reconstruction(&plan, &mandible, &donor, &request, &NoProgress)?;
        let propose_s = t.elapsed().as_secs_f64();
        anyhow::ensure!(proposal.findings.is_empty(), "refused: {:?}", proposal.findings);
        let mut with = plan.clone();
        with.apply(Edit::SetReconstruction {
            reconstruction: Some(Box::new(proposal.reconstruction)),
            donor_guide: Some(Box::new(proposal.guide)),
        })?;
        let t = Instant::now();
        // The donor guide built while proposing is taken, not built again.
        let verified: Vec<_> = proposal.verified.into_iter().collect();
        let reused = verified.len();
        let bones = GuideBones::of(&with, &mandible, Some(&donor.mesh));
        let guides = build_guides_reusing(&with, bones, None, &verified, &NoProgress)?;
        let build_s = t.elapsed().as_secs_f64();
        println!(
            "run {run}: donor CT loaded and segmented {load_s:.2} s; proposal {propose_s:.2} s; {} guide(s) built and \
             checked {build_s:.2} s ({reused} taken from the proposal; all passed: {}); proposal + guides {:.2} s",
            guides.guides.len(),
            guides.all_passed(),
            propose_s + build_s
        );
    }
    Ok(())
}
