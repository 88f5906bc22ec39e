//! Time the stages of a print-lab bundle on an approved plan, in process:
//! `cargo run --release --example bundle_timing -- <PLAN.json>` (the demo's plan, approved, in docs/PERFORMANCE.md).
use std::time::Instant;

use guidesmith::case::{
    build_guides, make_bundle, make_models, open_bone, plan_glb, release_for, render_guides, report_pdf,
    DEFAULT_MODEL_MARGIN_MM,
};
use guidesmith::progress::NoProgress;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: bundle_timing <PLAN.json>")?);
    let plan = guidesmith::plan::Plan::load(&path)?;
    let release = release_for(&plan, None, false)?;
    let t = Instant::now();
    let bone = open_bone(&plan, &path, None, &NoProgress)?.mesh;
    println!("open the bone        {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let guides = build_guides(&plan, &bone, None, &NoProgress)?;
    println!("build the guides     {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let models = make_models(&plan, &bone, DEFAULT_MODEL_MARGIN_MM, &NoProgress)?;
    println!("anatomical models    {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let glb = plan_glb(&plan, &bone, &guides, &models)?;
    println!(
        "glTF                 {:.2} s ({} bytes)",
        t.elapsed().as_secs_f64(),
        glb.len()
    );
    let t = Instant::now();
    let built: Vec<_> = guides.guides.iter().filter_map(|g| g.built().map(|(b, _)| b)).collect();
    let renders = render_guides(plan.case_id.as_str(), &bone, &built, &NoProgress)?;
    println!("review images        {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let report = report_pdf(&plan, &bone, &guides, &renders, &NoProgress)?;
    println!(
        "report               {:.2} s ({} bytes)",
        t.elapsed().as_secs_f64(),
        report.len()
    );
    for _ in 0..3 {
        let t = Instant::now();
        let bundle = make_bundle(&plan, &bone, &guides, &release, &NoProgress)?;
        println!(
            "bundle (all of it)   {:.2} s ({} bytes)",
            t.elapsed().as_secs_f64(),
            bundle.len()
        );
    }
    Ok(())
}
