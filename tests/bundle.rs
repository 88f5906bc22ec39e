//! The print-lab bundle through the binary on the demo case: an approved plan gives a reproducible zip that
//! `guidesmith verify` and `sha256sum -c` accept, that carries no path of the engineer's machine, and in which any
//! change (a guide's byte, the plan, a template the approval is bound to) is named by `verify` with exit code 1,
//! even when the attacker also fixes the checksum list. A draft verifies only as a draft.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use guidesmith::plan::sha256_hex;

mod common;

use common::{demo_case, guidesmith_quiet as guidesmith};

fn ok(args: &[&str]) -> String {
    let out = guidesmith(args);
    assert!(
        out.status.success(),
        "guidesmith {args:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `verify` on `zip`: its exit code and stdout.
fn verify(zip: &Path, draft: bool) -> (i32, String) {
    let mut args = vec!["verify", zip.to_str().expect("utf-8")];
    if draft {
        args.push("--draft");
    }
    let out = guidesmith(&args);
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn read_zip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).expect("zip")).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("entry");
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read entry");
            (f.name().expect("name").to_string(), b)
        })
        .collect()
}

/// Writes `files` as a zip at `path` (a tampered copy), with the checksum list recomputed when `fix_checksums`.
fn write_zip(path: &Path, files: &[(String, Vec<u8>)], fix_checksums: bool) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in files {
        let bytes = if fix_checksums && name == "checksums.sha256" {
            files
                .iter()
                .filter(|(n, _)| n != "checksums.sha256")
                .map(|(n, b)| format!("{}  {n}\n", sha256_hex(b)))
                .collect::<String>()
                .into_bytes()
        } else {
            bytes.clone()
        };
        zip.start_file(name.as_str(), options).expect("entry");
        zip.write_all(&bytes).expect("write");
    }
    zip.finish().expect("finish");
}

/// Writes `files` as a tampered bundle at `path` and asserts that `verify` refuses it saying each of `says`.
fn assert_named(path: &Path, files: &[(String, Vec<u8>)], fix_checksums: bool, says: &[&str]) {
    write_zip(path, files, fix_checksums);
    let (code, text) = verify(path, false);
    assert_eq!(code, 1, "{text}");
    for s in says {
        assert!(text.contains(s), "{s:?} not in {text}");
    }
}

/// A copy of `files` with `edit` applied to the file named `name`.
fn edited(files: &[(String, Vec<u8>)], name: &str, edit: impl Fn(&mut Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    let mut out = files.to_vec();
    let f = out
        .iter_mut()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in the bundle"));
    edit(&mut f.1);
    out
}

#[test]
fn an_approved_bundle_verifies_offline_is_reproducible_and_every_change_is_named() {
    let (tmp, demo) = demo_case();
    let plan = demo.join("plan.json");
    let plan = plan.to_str().expect("utf-8");
    let zip = |name: &str| tmp.path().join(name);

    // Without an approval: a draft only, and it verifies only as a draft.
    let refused = guidesmith(&["bundle", plan, "-o", zip("r.zip").to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(!zip("r.zip").exists());
    ok(&["bundle", plan, "-o", zip("d.zip").to_str().expect("utf-8"), "--draft"]);
    let (code, text) = verify(&zip("d.zip"), false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DRAFT"), "{text}");
    assert_eq!(verify(&zip("d.zip"), true).0, 0);
    assert!(read_zip(&zip("d.zip"))
        .iter()
        .any(|(n, _)| n == "guides/DEMO-JAW_symphysis-cutting_DRAFT.stl"));

    // Approved: released, twice the same bytes, verified.
    ok(&["approve", plan, "--name", "Dr B. Surgeon", "--role", "surgeon"]);
    ok(&["bundle", plan, "-o", zip("r.zip").to_str().expect("utf-8")]);
    ok(&["bundle", plan, "-o", zip("r2.zip").to_str().expect("utf-8")]);
    let bytes = std::fs::read(zip("r.zip")).expect("bundle");
    assert!(
        bytes == std::fs::read(zip("r2.zip")).expect("bundle"),
        "two bundles differ"
    );
    let (code, text) = verify(&zip("r.zip"), false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": VERIFIED;"), "{text}");
    assert!(text.contains("released: approved by Dr B. Surgeon (surgeon)"), "{text}");

    // What is inside: guides, plan, the bound inputs, the checksum list last; no path of this machine anywhere.
    let files = read_zip(&zip("r.zip"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "guides/DEMO-JAW_symphysis-cutting.stl",
        "guides/DEMO-JAW_left-body-drilling.stl",
        "guides/DEMO-JAW_guides.3mf",
        "guides/manifest.json",
        "guides/models/DEMO-JAW_model_anatomy.stl",
        "guides/models/DEMO-JAW_model_planned.stl",
        "guides/models/DEMO-JAW_model_resected.stl",
        "plan.json",
        "inputs/templates/cutting_guide.toml",
        "inputs/templates/drill_guide.toml",
        "inputs/printers.toml",
        "inputs/screws.toml",
        "report.pdf",
        "guides/DEMO-JAW_plan.glb",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    assert_eq!(names.last(), Some(&"checksums.sha256"));
    // The plan as shipped: no path hint, no DICOM UID (both are outside the approval's binding).
    let shipped: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "plan.json").expect("plan").1).expect("json");
    assert_eq!(shipped["ct"]["path"], "not-in-bundle");
    assert_eq!(shipped["ct"]["series_uid"], "");
    let here = tmp.path().to_str().expect("utf-8");
    let home = std::env::var("HOME").unwrap_or_default();
    for (name, b) in &files {
        let text = String::from_utf8_lossy(b);
        assert!(!text.contains(here), "{name} holds the engineer's folder {here}");
        assert!(home.len() < 3 || !text.contains(&home), "{name} holds the home folder");
    }
    // sha256sum reads the list (an independent checker).
    let unpacked = tmp.path().join("unpacked");
    for (name, b) in &files {
        let path = unpacked.join(name);
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        std::fs::write(path, b).expect("write");
    }
    let sums = Command::new("sha256sum")
        .args(["--check", "--strict", "checksums.sha256"])
        .current_dir(&unpacked)
        .output()
        .expect("sha256sum (coreutils)");
    assert!(sums.status.success(), "{}", String::from_utf8_lossy(&sums.stdout));
    assert_eq!(
        String::from_utf8_lossy(&sums.stdout).matches(": OK").count(),
        files.len() - 1
    );

    // One byte of a guide changed: named, with or without the checksum list fixed.
    let t = zip("t.zip");
    let stl = "guides/DEMO-JAW_symphysis-cutting.stl";
    let flipped = edited(&files, stl, |b| b[200] ^= 1);
    for fix in [false, true] {
        assert_named(&t, &flipped, fix, &[&format!("DOES NOT HOLD {stl}")]);
    }
    // The plan changed (a plane moved) and every list fixed: the plan is not the one the guides were made from.
    let moved = edited(&files, "plan.json", |b| {
        let mut v: serde_json::Value = serde_json::from_slice(b).expect("plan json");
        let x = v["planes"][0]["point_mm"][0].as_f64().expect("x");
        v["planes"][0]["point_mm"][0] = serde_json::json!(x + 1.0);
        *b = serde_json::to_vec_pretty(&v).expect("json");
    });
    assert_named(
        &t,
        &moved,
        true,
        &[
            "DOES NOT HOLD plan.json: the plan the guides were made from",
            "the plan changed: planes/",
        ],
    );
    // A template the approval is bound to changed: named.
    let template = edited(&files, "inputs/templates/cutting_guide.toml", |b| {
        b.extend_from_slice(b"\n# edited\n")
    });
    assert_named(&t, &template, true, &["template 'cutting_guide' changed (its file"]);
    // One byte of the printer profiles the approval is bound to: named.
    let printers = edited(&files, "inputs/printers.toml", |b| {
        let at = b.iter().position(|&c| c.is_ascii_digit()).expect("a digit");
        b[at] = if b[at] == b'9' { b'8' } else { b[at] + 1 };
    });
    assert_named(&t, &printers, true, &["the printer profiles changed"]);
    // One byte of the report or of the plan's glTF: named.
    for name in ["report.pdf", "guides/DEMO-JAW_plan.glb"] {
        let flipped = edited(&files, name, |b| b[100] ^= 1);
        assert_named(&t, &flipped, false, &[&format!("DOES NOT HOLD {name}")]);
    }
    // A file that is not in the list; and one that is, but that no bundle holds.
    let mut extra = files.clone();
    extra.insert(0, ("guides/extra.stl".to_string(), b"solid x\nendsolid x\n".to_vec()));
    assert_named(
        &t,
        &extra,
        false,
        &["DOES NOT HOLD guides/extra.stl: listed: not in checksums.sha256"],
    );
    assert_named(
        &t,
        &extra,
        true,
        &["DOES NOT HOLD guides/extra.stl: expected: a file the bundle should not hold"],
    );
    // A model that is no longer closed (its last triangle dropped), every list fixed: named.
    let model = "guides/models/DEMO-JAW_model_resected.stl";
    let opened = edited(&files, model, |b| {
        let count = u32::from_le_bytes([b[80], b[81], b[82], b[83]]) - 1;
        b[80..84].copy_from_slice(&count.to_le_bytes());
        b.truncate(b.len() - 50);
    });
    let forged: Vec<(String, Vec<u8>)> = opened
        .iter()
        .map(|(n, b)| {
            if n != "guides/manifest.json" {
                return (n.clone(), b.clone());
            }
            let stl = &opened.iter().find(|(m, _)| m == model).expect("model").1;
            let mut m: serde_json::Value = serde_json::from_slice(b).expect("manifest");
            for f in m["files"].as_array_mut().expect("files") {
                if f["name"] == "models/DEMO-JAW_model_resected.stl" {
                    f["sha256"] = serde_json::json!(sha256_hex(stl));
                    f["size_bytes"] = serde_json::json!(stl.len());
                }
            }
            (n.clone(), serde_json::to_vec_pretty(&m).expect("json"))
        })
        .collect();
    assert_named(
        &t,
        &forged,
        true,
        &[&format!("DOES NOT HOLD {model}: a closed valid model")],
    );
    // Names a zip tool would resolve elsewhere: outside the folder, or onto another entry.
    for name in [
        "../evil.sh",
        "guides/./DEMO-JAW_symphysis-cutting.stl",
        "GUIDES/manifest.json",
    ] {
        let mut aliased = files.clone();
        aliased.insert(0, (name.to_string(), b"x".to_vec()));
        assert_named(&t, &aliased, true, &["DOES NOT HOLD the bundle is a readable zip"]);
    }
    // A guide dropped from the bundle, its manifest and the checksum list: not the plan's guides.
    let stl = "DEMO-JAW_left-body-drilling.stl";
    let dropped: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(n, _)| *n != format!("guides/{stl}"))
        .map(|(n, b)| {
            if n != "guides/manifest.json" {
                return (n.clone(), b.clone());
            }
            let mut m: serde_json::Value = serde_json::from_slice(b).expect("manifest");
            m["guides"]
                .as_array_mut()
                .expect("guides")
                .retain(|g| g["name"] != "left-body-drilling");
            m["files"].as_array_mut().expect("files").retain(|f| f["name"] != stl);
            (n.clone(), serde_json::to_vec_pretty(&m).expect("json"))
        })
        .collect();
    assert_named(
        &t,
        &dropped,
        true,
        &["DOES NOT HOLD the manifest's guides are the plan's"],
    );
    // Not a zip at all.
    std::fs::write(zip("t.zip"), b"not a zip").expect("write");
    assert_eq!(verify(&zip("t.zip"), false).0, 1);
}
