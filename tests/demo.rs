//! The README's main job, end to end through the binary: it runs, can be run again, and gives the same bytes.

use std::process::Command;

fn demo(out: &std::path::Path) -> Vec<u8> {
    let run = Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(["demo", "-o"])
        .arg(out)
        .output()
        .expect("run demo");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("voxels >= 226 HU"), "{text}");
    assert!(text.contains("closed, manifold, outward"), "{text}");
    assert_eq!(text.matches("all checks passed").count(), 2, "{text}");
    let mut bytes = std::fs::read(out.join("bone.stl")).expect("bone.stl written");
    for name in [
        "DEMO-JAW_symphysis-cutting_DRAFT.stl",
        "DEMO-JAW_left-body-drilling_DRAFT.stl",
        "DEMO-JAW_guides_DRAFT.3mf",
        "manifest.json",
    ] {
        bytes.extend(std::fs::read(out.join("guides").join(name)).expect("guide file written"));
    }
    bytes
}

/// The manifest names every file with its hash, and every guide passed its checks.
fn assert_manifest(guides: &std::path::Path) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(guides.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["case_id"], "DEMO-JAW");
    // Nobody approved the demo's plan: its guides are drafts.
    assert_eq!(manifest["release"]["status"], "draft");
    assert_eq!(manifest["units"], "millimetre");
    let files = manifest["files"].as_array().expect("files");
    // Two STL, the 3MF, and the review images: a contact sheet per guide and the overview.
    assert_eq!(files.len(), 6);
    assert_eq!(
        files
            .iter()
            .filter(|f| f["name"].as_str().is_some_and(|n| n.starts_with("renders/")))
            .count(),
        3
    );
    for f in files {
        let bytes = std::fs::read(guides.join(f["name"].as_str().expect("name"))).expect("file");
        assert_eq!(
            guidesmith::plan::sha256_hex(&bytes),
            f["sha256"].as_str().expect("hash")
        );
    }
    for g in manifest["guides"].as_array().expect("guides") {
        assert_eq!(g["checks"]["passed"], true, "{g}");
        assert_eq!(g["checks"]["mesh"]["components"], 1);
        assert_eq!(g["printer"], "sla");
        assert_eq!(g["printer_in_plan"], "sla");
        // Every resolved parameter, with its unit.
        let params = g["parameters"].as_array().expect("parameters");
        assert!(params.len() >= 9, "{g}");
        assert!(
            params
                .iter()
                .all(|p| ["mm", "deg", "count"].contains(&p["unit"].as_str().unwrap_or(""))),
            "{g}"
        );
        // The seating holds within the template's defaults (0.5 mm, 2 deg), in every direction.
        let seating = &g["checks"]["seating"];
        let (slide, turn) = (seating["translation_mm"].as_f64(), seating["rotation_deg"].as_f64());
        assert!(slide.is_some_and(|mm| mm > 0.0 && mm <= 0.5), "{seating}");
        assert!(turn.is_some_and(|deg| deg > 0.0 && deg <= 2.0), "{seating}");
        assert!(seating["contact_points"].as_u64().is_some_and(|n| n > 100), "{seating}");
    }
    // The drill guide's seating direction and footprint were proposed (a drawn strip on the jaw's straight arm
    // slides along it): tilted from the drills' axis, and more than a rectangle.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(guides.parent().expect("demo folder").join("plan.json")).expect("plan"))
            .expect("json");
    let drilling = &plan["guides"][1];
    assert_eq!(drilling["name"], "left-body-drilling");
    let seat = drilling["seating_direction"].as_array().expect("seating");
    let along_drills = -seat[0].as_f64().expect("x");
    assert!(
        (0.5..0.95).contains(&along_drills),
        "seating {seat:?} is tilted 18-60 deg from the drills' axis"
    );
    assert!(drilling["footprint"]["outline_mm"].as_array().expect("outline").len() > 4);
    assert_eq!(std::fs::read_dir(guides.join("renders")).expect("renders").count(), 3);
}

#[test]
fn demo_runs_twice_with_identical_output_and_a_valid_bone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = demo(tmp.path());
    let second = demo(tmp.path());
    assert!(first == second, "the demo's outputs differ between runs");
    assert_manifest(&tmp.path().join("guides"));
    // `guidesmith build` on the plan the demo wrote: no release without a surgeon's approval, nothing written.
    let rebuilt = tmp.path().join("rebuilt");
    let build = |draft: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_guidesmith"));
        c.arg("build").arg(tmp.path().join("plan.json")).arg("-o").arg(&rebuilt);
        if draft {
            c.arg("--draft");
        }
        c.output().expect("build")
    };
    let refused = build(false);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("no surgeon's approval") && err.contains("--draft"),
        "{err}"
    );
    assert!(!rebuilt.exists());
    // As a draft it gives the same guides.
    let draft = build(true);
    assert!(draft.status.success(), "{}", String::from_utf8_lossy(&draft.stderr));
    for name in [
        "DEMO-JAW_symphysis-cutting_DRAFT.stl",
        "DEMO-JAW_guides_DRAFT.3mf",
        "manifest.json",
    ] {
        assert_eq!(
            std::fs::read(rebuilt.join(name)).expect("rebuilt"),
            std::fs::read(tmp.path().join("guides").join(name)).expect("demo"),
            "{name}"
        );
    }
    let check = Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .arg("check")
        .arg(tmp.path().join("bone.stl"))
        .output()
        .expect("check");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    // A folder the demo did not make is not overwritten.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(other.path().join("ct")).expect("mkdir");
    std::fs::write(other.path().join("ct/keep.txt"), "mine").expect("write");
    let refused = Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(["demo", "-o"])
        .arg(other.path())
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(1));
    assert!(other.path().join("ct/keep.txt").exists());
}
