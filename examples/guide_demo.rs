//! The demo case's guides (the plan `guidesmith demo` writes, from `case::demo`) with the time of each build step and
//! of the checks: `cargo run --release --example guide_demo [-- [--plan PLAN.json [--ct CT]] [OUT_DIR]]` (OUT_DIR:
//! also write each guide's STL). The demo CT is sampled in memory, so only the bone, the guides and their checks are
//! timed; with `--plan`, the guides of that plan on its bone (its segmentation re-run, as `guidesmith build` does).
use std::path::PathBuf;
use std::time::Instant;

use guidesmith::case::demo::demo_in_memory;
use guidesmith::case::{guide_requests, open_bone};
use guidesmith::guide::build::build_guide;
use guidesmith::guide::check::check_guide;
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::write_stl_file;
use guidesmith::plan::Plan;
use guidesmith::progress::NoProgress;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut plan_path, mut ct, mut out) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plan" => plan_path = args.next().map(PathBuf::from),
            "--ct" => ct = args.next().map(PathBuf::from),
            _ => out = Some(PathBuf::from(a)),
        }
    }
    let t = Instant::now();
    let (bone, plan) = match &plan_path {
        None => {
            let demo = demo_in_memory(&NoProgress)?;
            (demo.bone.mesh, demo.plan)
        }
        Some(path) => {
            let plan = Plan::load(path)?;
            let bone = open_bone(&plan, path, ct.as_deref(), &NoProgress)?;
            (bone.mesh, plan)
        }
    };
    println!(
        "CT sampled and bone made in {:.3} s, {} triangles",
        t.elapsed().as_secs_f64(),
        bone.triangles.len()
    );
    let t = Instant::now();
    let query = BoneQuery::new(&bone)?;
    println!("bone query {:.3} s", t.elapsed().as_secs_f64());
    for request in guide_requests(&plan, None) {
        let request = request.map_err(|f| anyhow::anyhow!("{f}"))?;
        let t = Instant::now();
        let built = build_guide(&bone, &request, &NoProgress)?;
        let build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let check = check_guide(&built, &query);
        println!(
            "{}: build {:.3} s {:?}, check {:.3} s, {} triangles, passed {}",
            built.name,
            build_s,
            built.timings_s,
            t.elapsed().as_secs_f64(),
            built.mesh.triangles.len(),
            check.passed
        );
        for f in &check.findings {
            println!("  {f}");
        }
        if let Some(dir) = &out {
            std::fs::create_dir_all(dir)?;
            write_stl_file(&built.mesh, &dir.join(format!("{}.stl", built.name)), "guide")?;
        }
    }
    Ok(())
}
