//! Privacy through the binary: a CT whose tags carry a patient's name, ID, birth date, study date and institution,
//! stored in a folder named after the patient (as hospital exports often are), goes through approve, plan show,
//! build and bundle; none of those values appears in any byte of any output (STL, 3MF, PNG, manifest, zip and every
//! file in it), in any output file name, or in what the commands print.

mod common;

use std::io::Read;
use std::path::Path;

use common::{demo_case, guidesmith_quiet, pdf_text};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;

/// What the hospital's export carries, and what must never come out.
const PATIENT_NAME: &str = "DOE^JANE";
const PATIENT_ID: &str = "PID4711XYZ";
const BIRTH_DATE: &str = "19470312";
const STUDY_DATE: &str = "19990615";
const INSTITUTION: &str = "ST ELSEWHERE HOSPITAL";

/// Every form in which the values could leak (DICOM and ISO dates, name parts, any case).
fn forbidden() -> Vec<String> {
    vec![
        "DOE^JANE".into(),
        "JANE".into(),
        "DOE_".into(),
        PATIENT_ID.into(),
        BIRTH_DATE.into(),
        "1947-03-12".into(),
        STUDY_DATE.into(),
        "1999-06-15".into(),
        "ELSEWHERE".into(),
    ]
}

/// Panics if `bytes` (named `what`) hold any forbidden value, in upper or lower case.
fn assert_clean(what: &str, bytes: &[u8]) {
    for f in forbidden() {
        for form in [f.to_uppercase(), f.to_lowercase()] {
            let hit = bytes.windows(form.len()).any(|w| w == form.as_bytes());
            assert!(!hit, "{what} holds {form:?}");
        }
    }
}

/// Copies the demo's CT into `to`, every file with the patient's identity written into its tags.
fn hospital_export(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("ct") {
        let path = entry.expect("entry").path();
        let mut obj = dicom_object::open_file(&path).expect("dicom");
        for (tag, vr, value) in [
            (tags::PATIENT_NAME, VR::PN, PATIENT_NAME),
            (tags::PATIENT_ID, VR::LO, PATIENT_ID),
            (tags::PATIENT_BIRTH_DATE, VR::DA, BIRTH_DATE),
            (tags::STUDY_DATE, VR::DA, STUDY_DATE),
            (tags::INSTITUTION_NAME, VR::LO, INSTITUTION),
        ] {
            obj.put(DataElement::new(tag, vr, value));
        }
        obj.write_to_file(to.join(path.file_name().expect("name")))
            .expect("write dicom");
    }
}

/// Runs `args`, asserts success and that nothing it printed holds a forbidden value.
fn run_clean(args: &[&str]) {
    let out = guidesmith_quiet(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(&format!("stdout of {args:?}"), &out.stdout);
    assert_clean(&format!("stderr of {args:?}"), &out.stderr);
}

/// Every file below `dir`: its name and bytes must be clean, and a zip's entries too.
fn assert_tree_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        assert_clean(&format!("the file name {name}"), name.as_bytes());
        if path.is_dir() {
            assert_tree_clean(&path);
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert_clean(&path.display().to_string(), &bytes);
        if name.ends_with(".pdf") {
            // The PDF's streams are compressed: its text as a reader extracts it must be clean too.
            assert_clean(&format!("the text of {name}"), pdf_text(&bytes).as_bytes());
        }
        if name.ends_with(".zip") || name.ends_with(".3mf") {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
            for i in 0..zip.len() {
                let mut f = zip.by_index(i).expect("entry");
                let entry_name = f.name().expect("name").to_string();
                assert_clean(&format!("{name}: entry name {entry_name}"), entry_name.as_bytes());
                let mut b = Vec::new();
                f.read_to_end(&mut b).expect("entry bytes");
                assert_clean(&format!("{name}: {entry_name}"), &b);
                if entry_name.ends_with(".pdf") {
                    assert_clean(&format!("the text of {name}: {entry_name}"), pdf_text(&b).as_bytes());
                }
            }
        }
    }
}

#[test]
fn no_patient_identity_reaches_any_output_file_name_or_log() {
    let (tmp, demo) = demo_case();
    let export = tmp.path().join("hospital").join("DOE_JANE_PID4711XYZ_19470312");
    hospital_export(&demo.join("ct"), &export);
    // The plan now points at the hospital's export (as `plan new --ct` on it would record).
    let plan_path = demo.join("plan.json");
    let mut plan: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan_path).expect("plan")).expect("json");
    plan["ct"]["path"] = serde_json::json!(export.to_str().expect("utf-8"));
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan).expect("json")).expect("write plan");
    let plan = plan_path.to_str().expect("utf-8");

    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let at = |name: &str| out.join(name).to_str().expect("utf-8").to_string();
    run_clean(&["plan", "show", plan]);
    run_clean(&["approve", plan, "--name", "Dr P. Surgeon", "--role", "surgeon"]);
    run_clean(&["build", plan, "-o", &at("guides")]);
    run_clean(&["bundle", plan, "-o", &at("CASE.zip")]);
    run_clean(&["verify", &at("CASE.zip")]);
    run_clean(&["model", plan, "-o", &at("models")]);
    run_clean(&["gltf", plan, "-o", &at("case.glb")]);
    run_clean(&["report", plan, "-o", &at("report.pdf")]);
    assert!(pdf_text(&std::fs::read(out.join("report.pdf")).expect("report")).contains("DEMO-JAW"));
    assert!(out.join("guides").join("manifest.json").is_file());
    assert!(out.join("CASE.zip").is_file());
    assert_tree_clean(&out);
    // The test would notice a leak: the export it made does carry the values.
    let one = std::fs::read_dir(&export)
        .expect("export")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let bytes = std::fs::read(one).expect("dicom");
    assert!(bytes.windows(PATIENT_ID.len()).any(|w| w == PATIENT_ID.as_bytes()));
}
