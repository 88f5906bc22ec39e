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
    std::fs::read(out.join("bone.stl")).expect("bone.stl written")
}

#[test]
fn demo_runs_twice_with_identical_output_and_a_valid_bone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = demo(tmp.path());
    let second = demo(tmp.path());
    assert!(first == second, "the demo's bone.stl differs between runs");
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
