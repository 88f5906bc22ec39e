//! A CT whose values cannot be Hounsfield units is reported (library and CLI), and the user can give the intercept.
//!
//! The series is a real one: cranium-0051 stores HU + 1024 (air as 0) with RescaleIntercept -1024. A copy with the
//! intercept rewritten to 0 is exactly the exported head series of issue #10 (values 0..4010 instead of HU).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use guidesmith::progress::NoProgress;
use guidesmith::volume::{self, LoadOptions, Volume};

/// RescaleIntercept (0028,1052), explicit VR little endian, VR DS: the bytes before its 2-byte length.
const INTERCEPT_TAG: &[u8] = &[0x28, 0x00, 0x52, 0x10, b'D', b'S'];

/// Copy every file of `src` into `dst` with the RescaleIntercept value replaced by `intercept`, padded to the same
/// length (DS allows trailing spaces), so no other byte moves.
fn copy_with_intercept(src: &Path, dst: &Path, intercept: &str) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(src).expect("list") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes
            .windows(INTERCEPT_TAG.len())
            .position(|w| w == INTERCEPT_TAG)
            .unwrap_or_else(|| panic!("{}: no RescaleIntercept", path.display()));
        let len = usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]));
        let value = &mut bytes[at + 8..at + 8 + len];
        assert_eq!(std::str::from_utf8(value).expect("DS text").trim(), "-1024.0");
        assert!(intercept.len() <= len);
        value.fill(b' ');
        value[..intercept.len()].copy_from_slice(intercept.as_bytes());
        std::fs::write(dst.join(path.file_name().expect("name")), bytes).expect("write");
        count += 1;
    }
    count
}

fn load(path: &Path, options: &LoadOptions) -> Volume {
    volume::load_with(path, None, options, &NoProgress)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

/// cranium-0051 with RescaleIntercept `intercept`, in a temporary folder.
fn intercept_copy(intercept: &str) -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let original = common::data("ct/cranium-0051")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("head");
    std::fs::create_dir(&copy).expect("mkdir");
    assert_eq!(copy_with_intercept(&original, &copy, intercept), 108);
    Some((dir, original, copy))
}

#[test]
fn air_stored_as_zero_is_reported_and_the_given_intercept_restores_hu() {
    let Some((_dir, original, copy)) = intercept_copy("0") else {
        return;
    };
    let v = load(&copy, &LoadOptions::default());
    let stats = v.stats();
    assert_eq!(
        (stats.min_hu, stats.max_hu),
        (0, 4010),
        "the copy holds the stored values"
    );
    let w = v.series.not_hounsfield.as_ref().expect("a warning about the values");
    assert_eq!(w.value_range, [0, 4010]);
    assert_eq!(w.stored_range, Some([0.0, 4010.0]));
    assert_eq!((w.rescale_intercept, w.rescale_slope), ([0.0, 0.0], [1.0, 1.0]));
    assert_eq!(w.suggested_intercept, -1024.0);
    // The flat floor outside the reconstruction circle: 4.7 % of the voxels sit exactly at it.
    assert!((0.04..0.05).contains(&w.share_at_min), "{}", w.share_at_min);
    let text = v
        .series
        .warnings
        .iter()
        .find(|t| t.contains("cannot be Hounsfield"))
        .expect("as text too");
    for needle in [
        "RescaleIntercept (0028,1052) 0",
        "RescaleSlope (0028,1053) 1",
        "Modality (0008,0060) CT",
        "stored values 0..4010",
        "--rescale-intercept -1024",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }

    // With the intercept given, the values are the reference HU again, voxel for voxel.
    let options = LoadOptions {
        rescale_intercept_override: Some(-1024.0),
    };
    let fixed = load(&copy, &options);
    let reference = load(&original, &LoadOptions::default());
    assert_eq!(fixed.stats(), reference.stats());
    assert_eq!(fixed.stats().voxels_at_or_above_226_hu, 475_759);
    assert!(fixed.hu == reference.hu);
    assert_eq!(fixed.series.not_hounsfield, None);
    assert!(
        fixed
            .series
            .warnings
            .iter()
            .any(|t| t.contains("RescaleIntercept (0028,1052) replaced by -1024")),
        "{:?}",
        fixed.series.warnings
    );
    // An intercept that cannot be used is refused, not applied.
    let bad = LoadOptions {
        rescale_intercept_override: Some(f64::NAN),
    };
    let err = volume::load_with(&copy, None, &bad, &NoProgress).expect_err("NaN intercept");
    assert!(err.to_string().contains("rescale intercept"), "{err}");
}

#[test]
fn a_flat_floor_far_above_air_is_reported_too() {
    // Intercept -24: air and the outside of the reconstruction circle (stored as 0) read -24, not about -1000.
    let Some((_dir, _original, copy)) = intercept_copy("-24") else {
        return;
    };
    let v = load(&copy, &LoadOptions::default());
    let w = v.series.not_hounsfield.as_ref().expect("a warning about the values");
    assert_eq!(w.value_range[0], -24);
    assert_eq!(w.suggested_intercept, -1024.0);
    assert!(w.to_string().contains("RescaleIntercept (0028,1052) -24"), "{w}");
}

#[test]
fn every_real_series_passes_the_check() {
    let Some(dir) = common::data("ct") else {
        return;
    };
    let names = [
        "cranium-0051",
        "ge-head-tilt",
        "skull-phantom-1mm",
        "mandible-0014",
        "leg-vhf-right",
        "abdomen-j2k",
    ];
    for name in names {
        let v = load(&dir.join(name), &LoadOptions::default());
        assert_eq!(v.series.not_hounsfield, None, "{name}");
        assert!(
            !v.series.warnings.iter().any(|w| w.contains("Hounsfield")),
            "{name}: {:?}",
            v.series.warnings
        );
    }
}

fn guidesmith(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(args)
        .output()
        .expect("run guidesmith");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_segment_and_plan_new_print_the_warning_and_take_the_intercept() {
    let Some((dir, _original, copy)) = intercept_copy("0") else {
        return;
    };
    let ct = copy.to_str().expect("utf-8 path");
    let warned =
        |text: &str| text.contains("cannot be Hounsfield units") && text.contains("RescaleIntercept (0028,1052)");

    let (ok, out, err) = guidesmith(&["info", ct, "--stats"]);
    assert!(ok, "{err}");
    assert!(out.contains("HU min / max    0 / 4010") && warned(&out), "{out}");
    let (ok, out, err) = guidesmith(&["info", ct, "--rescale-intercept", "-1024"]);
    assert!(ok, "{err}");
    assert!(out.contains("HU min / max    -1024 / 2986") && !warned(&out), "{out}");
    assert!(out.contains("voxels >= 226 HU 475759"), "{out}");

    // A small crop keeps the surfaces quick; the warning comes from the load, before any segmentation.
    let crop = "-20,-20,-60,20,20,-40";
    let stl = dir.path().join("bone.stl");
    let stl = stl.to_str().expect("utf-8 path");
    let (ok, _, err) = guidesmith(&["segment", ct, "--preset", "bone", "--crop", crop, "-o", stl]);
    assert!(ok, "{err}");
    assert!(warned(&err), "segment: {err}");
    let (ok, _, err) = guidesmith(&[
        "segment",
        ct,
        "--preset",
        "bone",
        "--crop",
        crop,
        "--rescale-intercept",
        "-1024",
        "-o",
        stl,
    ]);
    assert!(ok, "{err}");
    assert!(!warned(&err) && err.contains("replaced by -1024"), "segment: {err}");

    let plan = dir.path().join("plan.json");
    let plan = plan.to_str().expect("utf-8 path");
    let (ok, _, err) = guidesmith(&[
        "plan", "new", "--ct", ct, "--case", "c1", "--preset", "bone", "--crop", crop, "-o", plan,
    ]);
    assert!(ok, "{err}");
    assert!(warned(&err), "plan new: {err}");

    // A plan made with the intercept records it, so `plan check` loads the CT the same way and its hash matches.
    let (ok, _, err) = guidesmith(&[
        "plan",
        "new",
        "--ct",
        ct,
        "--case",
        "c1",
        "--preset",
        "bone",
        "--crop",
        crop,
        "--rescale-intercept",
        "-1024",
        "-o",
        plan,
        "--force",
    ]);
    assert!(ok && !warned(&err), "plan new --rescale-intercept: {err}");
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(plan).expect("plan")).expect("json");
    assert_eq!(
        written["ct"]["rescale_intercept_override_hu"],
        serde_json::json!(-1024.0)
    );
    let (ok, out, err) = guidesmith(&["plan", "check", plan]);
    assert!(ok, "plan check on the plan made with the intercept: {err}");
    assert!(out.contains("0 errors"), "{out}");
}
