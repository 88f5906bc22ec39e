//! A segmental resection of the right mandibular body on the real mandible `ct/mandible-0014`, planned and built
//! through the CLI as an engineer would: two cuts 21.5 mm apart, a cutting guide and a drill guide for the plate
//! screws in the bone that remains, both with the footprint and seating direction `plan add-guide` proposes. Every
//! check passes, the fixation screws hold bone that remains on both sides of the resection, and each cut is
//! measured on the body it crosses (the U-shaped jaw's other side is only reported).
//!
//! Where the numbers come from (readable in the CT, e.g. in 3D Slicer): the right body runs from about
//! (-15, -54) to (-35, -22) mm in x, y, along (-0.5, 0.866, 0); its buccal (lateral) surface faces (-0.866, -0.5, 0);
//! z = -8 mm is mid-height of the body. The cuts' points lie on the buccal surface.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use guidesmith::measure::BoneQuery;
use guidesmith::plan::Plan;
use guidesmith::progress::NoProgress;
use serde_json::Value;

/// The cuts' normal: across the body.
const NORMAL: [f64; 3] = [-0.5, 0.866, 0.0];
/// The mesial cut's point; the segment it removes lies on the normal's side.
const MESIAL: [f64; 3] = [-22.46, -47.42, -8.0];
/// The distal cut's point; the segment lies against the normal.
const DISTAL: [f64; 3] = [-35.25, -29.98, -8.0];
/// Into the bone from the buccal side.
const MEDIAL: [f64; 3] = [0.866, 0.5, 0.0];

fn guidesmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(args)
        .output()
        .expect("run guidesmith")
}

/// Runs `args`, asserts exit code 0, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = guidesmith(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "guidesmith {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the CLI said on the way (shown with --nocapture).
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn xyz(p: [f64; 3]) -> String {
    format!("{},{},{}", p[0], p[1], p[2])
}

fn along(p: [f64; 3], d: [f64; 3], t: f64) -> [f64; 3] {
    [p[0] + t * d[0], p[1] + t * d[1], p[2] + t * d[2]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn point(v: &Value) -> [f64; 3] {
    let a = v.as_array().unwrap_or_else(|| panic!("not a point: {v}"));
    [0, 1, 2].map(|k| a[k].as_f64().expect("coordinate"))
}

/// Whether `p` lies in the resected segment (the removed side of both cuts).
fn in_segment(p: [f64; 3]) -> bool {
    dot(sub(p, MESIAL), NORMAL) > 0.0 && dot(sub(p, DISTAL), NORMAL) < 0.0
}

#[test]
fn segmental_resection_of_the_real_mandible_through_the_cli() {
    let Some(ct) = common::data("ct/mandible-0014") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_path = dir.path().join("plan.json");
    let plan = plan_path.to_str().expect("utf-8 path");
    ok(&[
        "plan",
        "new",
        "--ct",
        ct.to_str().expect("utf-8"),
        "--case",
        "MAND-1",
        "-o",
        plan,
    ]);
    for (name, p, side) in [("mesial", MESIAL, "positive"), ("distal", DISTAL, "negative")] {
        ok(&[
            "plan",
            "add-plane",
            plan,
            "--name",
            name,
            "--point",
            &xyz(p),
            "--normal",
            &xyz(NORMAL),
            "--resect",
            side,
        ]);
    }

    // Plate screws in the bone that remains on both sides of the resection, two mesial and two distal, entering the
    // buccal cortex perpendicularly (the entries read off the bone the plan segments): drilled through the guide
    // before the cuts, so the reconstruction plate fits the holes afterwards.
    let document: Plan = serde_json::from_str(&std::fs::read_to_string(&plan_path).expect("plan")).expect("plan");
    let bone = guidesmith::case::open_bone(&document, &plan_path, None, &NoProgress).expect("bone");
    let query = BoneQuery::new(&bone.mesh).expect("query");
    let anterior = NORMAL.map(|c| -c);
    let screws = [
        (MESIAL, anterior, 6.0, -6.0),
        (MESIAL, anterior, 12.0, -10.0),
        (DISTAL, NORMAL, 5.0, -6.0),
        (DISTAL, NORMAL, 10.0, -10.0),
    ];
    for (k, (cut, away, t, z)) in screws.into_iter().enumerate() {
        let inside = along(cut, away, t);
        let from = along([inside[0], inside[1], z], MEDIAL, -25.0);
        let entry = query
            .crossings(from, MEDIAL, 0.0, 50.0)
            .expect("ray")
            .into_iter()
            .find(|c| c.entering)
            .expect("the screw line meets the body")
            .point_mm;
        assert!(!in_segment(entry));
        ok(&[
            "plan",
            "add-drill",
            plan,
            "--name",
            &format!("plate-{}", k + 1),
            "--entry",
            &xyz(entry),
            "--direction",
            &xyz(MEDIAL),
            "--length-mm",
            "8",
            "--diameter-mm",
            "1.5",
        ]);
    }
    // Both guides proposed: no --seating, no --footprint.
    ok(&[
        "plan",
        "add-guide",
        plan,
        "--name",
        "resection-cutting",
        "--template",
        "cutting_guide",
        "--planes",
        "mesial,distal",
    ]);
    ok(&[
        "plan",
        "add-guide",
        plan,
        "--name",
        "plate-drilling",
        "--template",
        "drill_guide",
        "--drills",
        "plate-1,plate-2,plate-3,plate-4",
    ]);

    // Each cut measured on the right body only, the left side of the U reported.
    let shown: Value = serde_json::from_str(&ok(&["plan", "show", plan, "--json"])).expect("json");
    let planes = shown["evaluation"]["planes"].as_array().expect("planes");
    assert_eq!(planes.len(), 2);
    for p in planes {
        assert_eq!(p["loop_count"], 1, "{}: one loop, the right body's", p["name"]);
        let centroid = point(&p["centroid_mm"]);
        assert!(
            centroid[0] < -10.0,
            "{}: the section's centroid {centroid:?} is not on the right body",
            p["name"]
        );
    }
    // The mesial plane, extended, also crosses the left body near its angle: reported, not measured.
    assert!(
        planes[0]["other_pieces"].as_u64().expect("other_pieces") >= 1,
        "{}",
        planes[0]
    );
    // The resection length between the two sections of the body: the planes are parallel, 21.5 mm apart.
    let pair = &shown["evaluation"]["plane_pairs"][0];
    assert_eq!(pair["between"], "resected", "{pair}");
    let length = pair["first_centroid_to_second_plane_mm"]
        .as_f64()
        .expect("length")
        .abs();
    let apart = dot(sub(DISTAL, MESIAL), NORMAL).abs();
    assert!(
        (length - apart).abs() < 0.01,
        "resection length {length} mm, planes {apart} mm apart"
    );
    let findings = shown["evaluation"]["findings"].to_string();
    assert!(findings.contains("plane_crosses_other_bone"), "{findings}");

    // Approved by the surgeon, built through the CLI: released, every check of both guides passes.
    let approved = ok(&["approve", plan, "--name", "Dr Mandible", "--role", "surgeon"]);
    assert!(approved.starts_with("approved by Dr Mandible (surgeon)"), "{approved}");
    let out_dir = dir.path().join("out");
    let summary = ok(&["build", plan, "-o", out_dir.to_str().expect("utf-8")]);
    eprintln!("{summary}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["release"]["status"], "approved", "{}", manifest["release"]);
    let guides = manifest["guides"].as_array().expect("guides");
    assert_eq!(guides.len(), 2);
    for g in guides {
        let checks = &g["checks"];
        assert_eq!(checks["passed"], true, "{}: {checks}", g["name"]);
        let seating = &checks["seating"];
        assert!(seating["translation_mm"].as_f64().expect("bounded") <= 0.5, "{seating}");
        assert!(seating["rotation_deg"].as_f64().expect("bounded") <= 2.0, "{seating}");
        assert!(g["stl_file"].as_str().is_some_and(|f| out_dir.join(f).is_file()));
    }
    // The cutting guide's screws hold bone that remains, on both sides of the resection.
    let cutting = guides
        .iter()
        .find(|g| g["name"] == "resection-cutting")
        .expect("cutting guide");
    let holes: Vec<[f64; 3]> = cutting["checks"]["fixation_holes_mm"]
        .as_array()
        .expect("holes")
        .iter()
        .map(point)
        .collect();
    assert!(holes.len() >= 2, "{holes:?}");
    assert!(holes.iter().all(|h| !in_segment(*h)), "{holes:?}");
    assert!(
        holes.iter().any(|h| dot(sub(*h, MESIAL), NORMAL) < 0.0),
        "no screw mesial: {holes:?}"
    );
    assert!(
        holes.iter().any(|h| dot(sub(*h, DISTAL), NORMAL) > 0.0),
        "no screw distal: {holes:?}"
    );
    let slots = cutting["checks"]["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 2);
    // Every guide carries the label `plan add-guide` gives by default: the case ID, G1 and the side (the resection is
    // on the patient's right; no DRAFT: the surgeon approved), on the flat outer wall of a slot housing (the pad
    // between the housings is too small), standing its full relief above the wall, every letter-top point on the
    // finished guide; the drill guide's on its pad.
    let drilling = guides
        .iter()
        .find(|g| g["name"] == "plate-drilling")
        .expect("drill guide");
    let label = &drilling["checks"]["label"];
    assert_eq!(label["ok"], true, "{label}");
    assert_eq!(label["on"], "pad", "{label}");
    assert!(label["lines"].to_string().contains("G2"), "{label}");
    let label = &cutting["checks"]["label"];
    assert_eq!(label["ok"], true, "{label}");
    let lines: Vec<&str> = label["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(lines.join(" / "), "MAND-1 / G1 R", "{label}");
    assert!(label["on"].as_str().expect("on").starts_with("slot housing"), "{label}");
    assert!(label["relief_mm"].as_f64().expect("relief") >= 0.5, "{label}");
    assert!(label["cap_height_mm"].as_f64().expect("height") >= 2.5, "{label}");
    assert_eq!(label["top_points_found"], label["top_points"], "{label}");

    // Anatomical models of the real mandible: the region as it is, after the resection, and the resected segment;
    // each a closed valid solid, the resection splitting the jaw in two and the two parts adding up to the whole.
    let models_dir = dir.path().join("models");
    let printed = ok(&["model", plan, "-o", models_dir.to_str().expect("utf-8")]);
    let volume = |name: &str| {
        let path = models_dir.join(format!("MAND-1_model_{name}.stl"));
        let mesh = guidesmith::mesh::read_stl_file(&path).expect("model STL");
        let report = guidesmith::mesh::MeshReport::new(&mesh);
        assert!(report.is_valid(), "{name}: {report}");
        (mesh.signed_volume_mm3(), report.components)
    };
    // Each carries the case label on its largest flat face; the letters' own volume is printed, so the parts can be
    // added up without it.
    let label_mm3 = |name: &str| -> f64 {
        let line = printed
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in {printed}"));
        let after = line
            .split("label: MAND-1")
            .nth(1)
            .unwrap_or_else(|| panic!("no case label: {line}"));
        after
            .split("(+")
            .nth(1)
            .and_then(|v| v.split(" mm^3").next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no label volume: {line}"))
    };
    let (anatomy, anatomy_parts) = volume("anatomy");
    let (planned, planned_parts) = volume("planned");
    let (resected, resected_parts) = volume("resected");
    let [la, lp, lr] = ["anatomy", "planned", "resected"].map(label_mm3);
    assert!(la > 1.0 && lp > 1.0 && lr > 1.0, "{printed}");
    let (anatomy, planned, resected) = (anatomy - la, planned - lp, resected - lr);
    assert_eq!((anatomy_parts, planned_parts, resected_parts), (1, 2, 1), "{printed}");
    assert!(
        resected > 0.05 * anatomy && resected < 0.6 * anatomy,
        "{anatomy} {resected}"
    );
    assert!(
        ((planned + resected) - anatomy).abs() < 1e-3 * anatomy,
        "{planned} + {resected} != {anatomy}"
    );
    // On a flat base: the region and the planned state each one solid (the planned state's two pieces held in their
    // planned places by posts), standing on a flat underside; the segment without a base.
    let based_dir = dir.path().join("based");
    let printed = ok(&[
        "model",
        plan,
        "-o",
        based_dir.to_str().expect("utf-8"),
        "--base-mm",
        "4",
    ]);
    for (name, posts_at_least) in [("anatomy", 1), ("planned", 2)] {
        let path = based_dir.join(format!("MAND-1_model_{name}.stl"));
        let mesh = guidesmith::mesh::read_stl_file(&path).expect("model STL");
        let report = guidesmith::mesh::MeshReport::new(&mesh);
        assert!(report.is_valid() && report.components == 1, "{name}: {report}");
        let line = printed
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(name))
            .nth(1)
            .unwrap_or_default();
        let posts: usize = line
            .split("joined by ")
            .nth(1)
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no base: {printed}"));
        assert!(posts >= posts_at_least, "{printed}");
        // The underside: the lowest vertices are the plate's four corners, 4 mm below its top.
        let floor = mesh.positions.iter().map(|p| p[2]).fold(f64::INFINITY, f64::min);
        let on_floor = mesh.positions.iter().filter(|p| p[2] <= floor + 1e-9).count();
        assert_eq!(on_floor, 4, "{name}");
        let plate_top = mesh
            .positions
            .iter()
            .filter(|p| (p[2] - (floor + 4.0)).abs() < 1e-9)
            .count();
        assert!(plate_top >= 4, "{name}");
        assert!(mesh.signed_volume_mm3() > volume(name).0, "{name}");
    }
    assert_eq!(printed.matches("on a flat base").count(), 2, "{printed}");
    // The whole plan as glTF, read back by an independent reader: the real bone, both cutting planes in their
    // planes, both guides as exported, the three models.
    let glb = dir.path().join("MAND-1.glb");
    ok(&["gltf", plan, "-o", glb.to_str().expect("utf-8")]);
    let (root, _, _, nodes) = common::read_glb(&std::fs::read(&glb).expect("glb"));
    assert_eq!(root, "MAND-1");
    let names: Vec<String> = nodes.iter().map(|n| format!("{}/{}", n.group, n.name)).collect();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).expect("plan")).expect("json");
    for p in saved["planes"].as_array().expect("planes") {
        let name = p["name"].as_str().expect("name");
        let node = nodes
            .iter()
            .find(|n| n.name == format!("plane {name}"))
            .expect("plane node");
        let (q, n) = (point(&p["point_mm"]), point(&p["normal"]));
        assert!(
            node.mesh.positions.iter().all(|v| dot(sub(*v, q), n).abs() < 1e-4),
            "{name}"
        );
    }
    for g in saved["guides"].as_array().expect("guides") {
        let name = format!("guides/guide {}", g["name"].as_str().expect("name"));
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    for m in ["anatomy", "planned", "resected"] {
        assert!(names.contains(&format!("models/model {m}")), "{names:?}");
    }
    let glb_bone = nodes.iter().find(|n| n.name == "bone").expect("bone");
    assert_eq!(glb_bone.mesh.triangles, bone.mesh.triangles);

    // The plan report of the real case: its planes, drills and guides with their checks, as a reader extracts it.
    let pdf = dir.path().join("MAND-1_report.pdf");
    ok(&["report", plan, "-o", pdf.to_str().expect("utf-8")]);
    let text = common::pdf_text(&std::fs::read(&pdf).expect("report"));
    for p in saved["planes"].as_array().expect("planes") {
        let name = p["name"].as_str().expect("name");
        assert!(
            text.contains(&format!("slot {name}")),
            "slot check of {name} not in the report"
        );
    }
    for d in saved["drills"].as_array().expect("drills") {
        assert!(
            text.contains(d["name"].as_str().expect("name")),
            "{d} not in the report"
        );
    }
    for g in saved["guides"].as_array().expect("guides") {
        assert!(text.contains(&format!("Guide {}", g["name"].as_str().expect("name"))));
    }
    assert!(text.contains("Surgical plan report: case MAND-1"), "{text}");
    if let Some(keep) = std::env::var_os("GUIDESMITH_REPORT_PAGES") {
        let pages = Command::new("pdftoppm")
            .args(["-r", "70", "-png"])
            .arg(&pdf)
            .arg(Path::new(&keep).join("MAND-1_report_page"))
            .status()
            .expect("pdftoppm");
        assert!(pages.success());
    }

    let renders = out_dir.join("renders");
    if let Some(keep) = std::env::var_os("GUIDESMITH_KEEP_RENDERS") {
        copy_dir(&renders, Path::new(&keep));
        std::fs::copy(&plan_path, Path::new(&keep).join("plan.json")).expect("copy plan");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("render folder");
    if let Ok(entries) = std::fs::read_dir(from) {
        for e in entries.flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy render");
        }
    }
}
