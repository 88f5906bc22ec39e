//! Builds a cutting guide and a drill guide on a jaw STL and prints the checks:
//! `cargo run --release --example guide_demo -- bone.stl OUT_DIR`.
use std::collections::BTreeMap;
use std::time::Instant;

use guidesmith::guide::build::{build_guide, ChannelSpec, GuideRequest, SlotSpec, DEFAULT_GRID_MM};
use guidesmith::guide::check::check_guide;
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::{read_stl_file, write_stl_file};
use guidesmith::template::{builtin_printers, builtin_template};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bone = read_stl_file(std::path::Path::new(&args[1]))?;
    let out = std::path::PathBuf::from(&args[2]);
    std::fs::create_dir_all(&out)?;
    let bb = bone.bounding_box().ok_or_else(|| anyhow::anyhow!("empty"))?;
    let t = Instant::now();
    let query = BoneQuery::new(&bone)?;
    println!("bone query {:.3} s", t.elapsed().as_secs_f64());
    let printers = builtin_printers()?;
    let sla = printers.get("sla")?;
    let front = bb.min_mm[1];
    let cutting = GuideRequest {
        name: "symphysis-cut".into(),
        params: builtin_template("cutting_guide")?.resolve(&BTreeMap::new(), sla)?,
        slots: vec![
            SlotSpec {
                name: "R".into(),
                point_mm: [-12.0, front, 0.0],
                normal: [1.0, 0.0, 0.0],
                blade_thickness_mm: 0.6,
            },
            SlotSpec {
                name: "L".into(),
                point_mm: [12.0, front, 0.0],
                normal: [1.0, 0.0, 0.0],
                blade_thickness_mm: 0.6,
            },
        ],
        channels: vec![],
        seating_direction: [0.0, 1.0, 0.0],
        footprint_mm: vec![
            [-20.0, front, -6.0],
            [20.0, front, -6.0],
            [20.0, front, 6.0],
            [-20.0, front, 6.0],
        ],
        grid_mm: DEFAULT_GRID_MM,
    };
    let side = bb.max_mm[0];
    let drill = GuideRequest {
        name: "left-body-drill".into(),
        params: builtin_template("drill_guide")?.resolve(&BTreeMap::new(), sla)?,
        slots: vec![],
        channels: (0..3)
            .map(|k| {
                let y = -2.0 + 7.0 * k as f64;
                // Entry on the lateral surface: cast from outside.
                let hits = query
                    .crossings([side + 5.0, y, 0.0], [-1.0, 0.0, 0.0], 0.0, 50.0)
                    .expect("ray");
                let e = hits.first().map(|h| h.point_mm).expect("the drill line meets the bone");
                ChannelSpec {
                    name: format!("D{}", k + 1),
                    entry_mm: e,
                    direction: [-1.0, 0.0, 0.0],
                    drill_diameter_mm: 1.5,
                }
            })
            .collect(),
        seating_direction: [-1.0, 0.0, 0.0],
        footprint_mm: vec![
            [side, -8.0, -6.0],
            [side, 18.0, -6.0],
            [side, 18.0, 6.0],
            [side, -8.0, 6.0],
        ],
        grid_mm: DEFAULT_GRID_MM,
    };
    for req in [cutting, drill] {
        let t = Instant::now();
        let built = build_guide(&bone, &req)?;
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
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
            "failures": check.failures, "slots": check.slots, "channels": check.channels,
            "contact": check.contact, "walls": check.walls, "blocked": check.blocked_on_removal,
            "components": check.mesh.components, "valid": check.mesh.is_valid()}))?
        );
        write_stl_file(&built.mesh, &out.join(format!("{}.stl", built.name)), "guide")?;
    }
    Ok(())
}
