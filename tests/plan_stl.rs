//! A plan on a bone segmented elsewhere: the demo jaw's surface written as another tool writes STL (ASCII, every facet
//! with its own corners computed on their own, so copies of a vertex differ in the last bit), `plan new --bone-stl`
//! repairs it and makes a plan without a CT, and the demo's guides build on it through `guidesmith build`; a model
//! with a hole is refused naming the place.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use guidesmith::case::demo::{demo_in_memory, demo_plan};
use guidesmith::mesh::Mesh;
use guidesmith::plan::Plan;
use guidesmith::progress::NoProgress;

/// `mesh` as an ASCII STL in `f32`, each facet's corners one unit in the last place off in a pattern that differs
/// between the facets sharing a vertex, as exporters that compute every facet on its own write them.
fn write_ascii_stl(mesh: &Mesh, path: &Path) {
    let mut out = String::from("solid exported\n");
    for (t, tri) in mesh.triangles.iter().enumerate() {
        out.push_str("  facet normal 0 0 0\n    outer loop\n");
        for (k, &v) in tri.iter().enumerate() {
            let p = mesh.positions[v as usize].map(|c| c as f32);
            let ulp = |c: f32, i: usize| match (t + k + i) % 3 {
                _ if c == 0.0 => c,
                0 => c,
                1 => f32::from_bits(c.to_bits() + 1),
                _ => f32::from_bits(c.to_bits() - 1),
            };
            out.push_str(&format!(
                "      vertex {:e} {:e} {:e}\n",
                ulp(p[0], 0),
                ulp(p[1], 1),
                ulp(p[2], 2)
            ));
        }
        out.push_str("    endloop\n  endfacet\n");
    }
    out.push_str("endsolid exported\n");
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .expect("write stl");
}

fn guidesmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run guidesmith")
}

#[test]
fn a_plan_on_a_foreign_bone_stl_builds_the_demo_guides() {
    let demo = demo_in_memory(&NoProgress).expect("demo");
    let dir = tempfile::tempdir().expect("tempdir");
    let stl = dir.path().join("jaw from slicer.stl");
    write_ascii_stl(&demo.bone.mesh, &stl);
    let plan_path = dir.path().join("plan.json");
    let (stl_s, plan_s) = (stl.to_str().expect("utf-8"), plan_path.to_str().expect("utf-8"));

    let out = guidesmith(&["plan", "new", "--bone-stl", stl_s, "--case", "DEMO-STL", "-o", plan_s]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Copies of a vertex a few nanometres apart: the repair welds them back.
    assert!(text.contains("bone model 'jaw from slicer'"), "{text}");
    assert!(text.contains("welded"), "{text}");

    let mut plan = Plan::load(&plan_path).expect("plan");
    assert!(plan.ct.is_none() && plan.bone.segmentation.is_none());
    assert_eq!(plan.bone.models.len(), 1);
    assert_eq!(
        plan.bone.models[0].path, "jaw from slicer.stl",
        "relative to the plan's folder"
    );

    // The repaired bone is the demo's bone: same topology, the volume to a few ppm (coordinates moved < 1 um).
    let repaired = guidesmith::case::read_bone_model("jaw", &stl, Some(&plan.bone.models[0].sha256))
        .expect("model")
        .mesh;
    assert_eq!(repaired.triangles.len(), demo.bone.mesh.triangles.len());
    let (a, b) = (repaired.signed_volume_mm3(), demo.bone.mesh.signed_volume_mm3());
    assert!((a - b).abs() / b < 1e-5, "volume {a} vs {b}");

    // The demo's planes, drills and guides on this bone, then `guidesmith build`.
    let demo_elements = demo_plan(&repaired, None, None).expect("demo plan");
    plan.planes = demo_elements.planes;
    plan.drills = demo_elements.drills;
    plan.guides = demo_elements.guides;
    plan.save(&plan_path).expect("save");
    let guides = dir.path().join("guides");
    // A plan on STL models is approved as one on a CT (its models' hashes are part of the plan it binds).
    let approve = guidesmith(&["approve", plan_s, "--name", "Dr STL", "--role", "surgeon"]);
    assert!(approve.status.success(), "{}", String::from_utf8_lossy(&approve.stderr));
    let out = guidesmith(&["build", plan_s, "-o", guides.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches("all checks passed").count(), 2, "{text}");
    for name in [
        "DEMO-STL_symphysis-cutting.stl",
        "DEMO-STL_left-body-drilling.stl",
        "manifest.json",
    ] {
        assert!(guides.join(name).is_file(), "{name}");
    }
}

#[test]
fn a_bone_stl_with_a_hole_is_refused_naming_the_place() {
    let demo = demo_in_memory(&NoProgress).expect("demo");
    let dir = tempfile::tempdir().expect("tempdir");
    // Cut out a patch of faces around one vertex of the symphysis: a hole no repair may close.
    let mesh = &demo.bone.mesh;
    let front = mesh.bounding_box().expect("bone").min_mm[1];
    let centre = [0.0, front, 0.0];
    let near = |p: [f64; 3]| (0..3).map(|k| (p[k] - centre[k]).powi(2)).sum::<f64>() < 9.0;
    let kept: Vec<[u32; 3]> = mesh
        .triangles
        .iter()
        .copied()
        .filter(|t| !t.iter().all(|&v| near(mesh.positions[v as usize])))
        .collect();
    assert!(kept.len() + 20 < mesh.triangles.len(), "a real hole is cut");
    let holed = Mesh::new(mesh.positions.clone(), kept).expect("mesh");
    let stl = dir.path().join("holed.stl");
    write_ascii_stl(&holed, &stl);
    let plan = dir.path().join("plan.json");
    let out = guidesmith(&[
        "plan",
        "new",
        "--bone-stl",
        stl.to_str().expect("utf-8"),
        "--case",
        "HOLED",
        "-o",
        plan.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("holed.stl") && err.contains("hole"), "{err}");
    assert!(!plan.exists(), "no plan is written");
    // The place the refusal names is the cut: within 3 mm of its centre on the front of the jaw.
    let refused = guidesmith::case::read_bone_model("holed", &stl, None).expect_err("a hole");
    let guidesmith::case::CaseError::Repair {
        error: guidesmith::mesh::RepairError::Unrepairable(u),
        ..
    } = refused
    else {
        panic!("refused for the hole: {refused}")
    };
    assert_eq!(u.holes.count, 1, "{u}");
    let at = u.holes.examples[0].center_mm;
    let d = (0..3).map(|k| (at[k] - centre[k]).powi(2)).sum::<f64>().sqrt();
    assert!(d < 3.0, "hole reported at {at:?}, cut at {centre:?}");
}
