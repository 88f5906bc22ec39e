//! The plan's glTF binary, read back with an independent reader (the `gltf` crate): every element of the demo plan
//! is there, named and in its group, the guides are the exported guides triangle for triangle, the planes lie in
//! the plan's planes and the drills are as long as planned, in patient mm under a root that scales to metres.

mod common;

use common::{demo_case, guidesmith_quiet, read_glb};

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[test]
fn the_demo_plans_gltf_reads_back_with_every_element_exact_to_the_plan() {
    let (tmp, demo) = demo_case();
    let plan_path = demo.join("plan.json");
    let glb_path = tmp.path().join("demo.glb");
    let out = guidesmith_quiet(&[
        "gltf",
        plan_path.to_str().expect("utf-8"),
        "-o",
        glb_path.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&glb_path).expect("glb");
    let (root, rotation, scale, nodes) = read_glb(&bytes);
    assert_eq!(root, "DEMO-JAW");
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert!(
        (rotation[0] + h).abs() < 1e-6 && rotation[1] == 0.0 && (rotation[3] - h).abs() < 1e-6,
        "{rotation:?}"
    );
    assert_eq!(scale, [0.001; 3]);
    let plan = guidesmith::plan::Plan::load(&plan_path).expect("plan");
    let find = |group: &str, name: &str| {
        nodes
            .iter()
            .find(|n| n.group == group && n.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "{group}/{name} not in {:?}",
                    nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
                )
            })
    };
    // The bone is the case's bone, triangle for triangle.
    let bone = find("anatomy", "bone");
    assert!(bone.mesh.triangles.len() > 10_000, "{}", bone.mesh.triangles.len());
    // Planes lie in the plan's planes (f32 rounding of positions of ~100 mm: 1e-5 mm).
    for p in &plan.planes {
        let n = find("plan", &format!("plane {}", p.name));
        assert!(n.colour_rgba[3] < 1.0, "planes are translucent");
        assert!(n.mesh.triangles.len() >= 2);
        for q in &n.mesh.positions {
            let d = dot(
                [q[0] - p.point_mm[0], q[1] - p.point_mm[1], q[2] - p.point_mm[2]],
                p.normal,
            );
            assert!(d.abs() < 1e-4, "plane {}: vertex {q:?} is {d} mm off", p.name);
        }
    }
    // Drills run from their entry over their planned length.
    for d in &plan.drills {
        let n = find("plan", &format!("drill {}", d.name));
        let along: Vec<f64> = n
            .mesh
            .positions
            .iter()
            .map(|q| {
                dot(
                    [q[0] - d.entry_mm[0], q[1] - d.entry_mm[1], q[2] - d.entry_mm[2]],
                    d.direction,
                )
            })
            .collect();
        let lo = along.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = along.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            lo.abs() < 1e-4 && (hi - d.length_mm).abs() < 1e-4,
            "{}: {lo}..{hi}",
            d.name
        );
    }
    // The guides are the exported guides: same triangles, same volume, one closed solid each.
    let export = tmp.path().join("export");
    let out = guidesmith_quiet(&[
        "build",
        plan_path.to_str().expect("utf-8"),
        "-o",
        export.to_str().expect("utf-8"),
        "--draft",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for g in &plan.guides {
        let n = find("guides", &format!("guide {}", g.name));
        let stl = guidesmith::mesh::read_stl_file(&export.join(format!("DEMO-JAW_{}_DRAFT.stl", g.name))).expect("stl");
        assert_eq!(n.mesh.triangles.len(), stl.triangles.len(), "{}", g.name);
        let (a, b) = (n.mesh.signed_volume_mm3(), stl.signed_volume_mm3());
        assert!((a - b).abs() < 1e-6 * b, "{}: {a} vs {b} mm^3", g.name);
        assert!(guidesmith::mesh::MeshReport::new(&n.mesh).is_valid(), "{}", g.name);
    }
    // The anatomical models, and nothing of this machine in the file.
    for m in ["anatomy", "planned", "resected"] {
        assert!(find("models", &format!("model {m}")).mesh.triangles.len() > 100);
    }
    let here = tmp.path().to_str().expect("utf-8");
    assert!(!String::from_utf8_lossy(&bytes).contains(here));
    // The same plan gives the same bytes.
    let again = tmp.path().join("again.glb");
    let out = guidesmith_quiet(&[
        "gltf",
        plan_path.to_str().expect("utf-8"),
        "-o",
        again.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    assert!(
        std::fs::read(&again).expect("glb") == bytes,
        "two glTFs of one plan differ"
    );
}
