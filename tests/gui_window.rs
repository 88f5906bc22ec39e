//! The real application window under Xvfb (an X server without a screen), rendered with wgpu on lavapipe: it
//! opens `ct/cranium-0051`, makes the bone surface, and saves a screenshot of itself, as a user would see it.
//!
//! Needs `xvfb-run` and a Vulkan driver (`.ci/run` installs xvfb and mesa-vulkan-drivers); without them the test
//! says so and passes on a developer machine, and fails under CI.
#![cfg(feature = "gui")]

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_window_opens_a_real_ct_makes_its_bone_and_shows_it() {
    let Some(ct) = common::data("ct/cranium-0051") else {
        return;
    };
    if !common::has_xvfb() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let shot = dir.path().join("window.png");
    let runtime = dir.path().join("xdg");
    std::fs::create_dir(&runtime).expect("runtime folder");
    // `timeout`: a window waiting for input would otherwise hang the test run.
    let out = Command::new("timeout")
        .args(["900", "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_guidesmith"))
        .arg("gui")
        .arg(&ct)
        .arg("--make-surface")
        .arg("--screenshot")
        .arg(&shot)
        .env("WGPU_BACKEND", "vulkan")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("xvfb-run starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the window did not close cleanly: {stderr}");
    assert!(
        stderr.contains("Bone surface:") && stderr.contains("every check passed"),
        "{stderr}"
    );
    assert!(!stderr.contains("error:"), "{stderr}");
    let (w, h, pixels) = common::read_png(&shot);
    assert_eq!((w, h), (1600, 1000), "the screenshot is the window");
    // The 3D view (top right quarter of the centre) shows the bone: many bright, warm pixels.
    let bone_like = pixels
        .chunks_exact(4)
        .filter(|p| p[0] > 150 && p[1] > 130 && p[2] > 100 && p[0] >= p[2])
        .count();
    assert!(
        bone_like > 20_000,
        "only {bone_like} bone-coloured pixels: is the 3D view empty?"
    );
    if let Some(keep) = std::env::var_os("GUIDESMITH_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, Path::new(&keep)).expect("copy the screenshot");
    }
}
