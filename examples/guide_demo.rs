//! The demo case's guides (the plan `guidesmith demo` writes, from `case::demo`) with the time of each build step and
//! of the checks: `cargo run --release --example guide_demo [-- OUT_DIR]` (OUT_DIR: also write each guide's STL).
//! The demo CT is sampled in memory, so only the bone, the guides and their checks are timed.
use std::time::Instant;

use guidesmith::case::demo::demo_in_memory;
use guidesmith::case::guide_requests;
use guidesmith::guide::build::build_guide;
use guidesmith::guide::check::check_guide;
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::write_stl_file;
use guidesmith::progress::NoProgress;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map(std::path::PathBuf::from);
    let t = Instant::now();
    let demo = demo_in_memory(&NoProgress)?;
    let (bone, plan) = (demo.bone.mesh, demo.plan);
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
