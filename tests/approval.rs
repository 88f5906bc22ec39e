//! The surgeon's approval through the binary, on the demo case: no release without it, an engineer's approval is not
//! a surgeon's, an approved plan is released, every later change makes the approval stale and says what changed, and
//! a CT changed after the approval stops the build. The approval's binding is recomputed here from the plan file and
//! the template files on disk, as a third party would (docs/APPROVAL.md).

use std::path::Path;
use std::process::Output;

use guidesmith::plan::{sha256_hex, Plan};
use serde_json::Value;

mod common;

use common::{demo_case, guidesmith_quiet as guidesmith};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `args`, asserts success, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = guidesmith(args);
    assert!(
        out.status.success(),
        "guidesmith {args:?}\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs `args`, asserts exit code 1 and that stderr says `says`; returns stderr.
fn refused(args: &[&str], says: &str) -> String {
    let out = guidesmith(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "guidesmith {args:?} should be refused: {err}"
    );
    assert!(err.contains(says), "guidesmith {args:?}: {says:?} not in {err}");
    err
}

fn file_sha256(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read"))
}

/// The binding of `approval` (a plan file's approval, JSON) recomputed from the plan file and the files of
/// `templates/`: the canonical text of docs/APPROVAL.md, and its SHA-256.
fn recomputed_binding(plan_path: &Path, approval: &Value) -> String {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    // The plan's content: the plan without its approvals and hints (the CT's path and series UID), canonical form.
    let mut content = Plan::load(plan_path).expect("plan");
    content.approvals.clear();
    if let Some(ct) = &mut content.ct {
        ct.path.clear();
        ct.series_uid.clear();
    }
    let plan_sha256 = sha256_hex(content.to_json().as_bytes());
    let b = &approval["binding"];
    assert_eq!(b["plan_sha256"], plan_sha256.as_str(), "the plan's content hash");
    let ct = content
        .ct
        .as_ref()
        .expect("the demo plan has a CT")
        .volume_sha256
        .clone();
    let mut text = format!("guidesmith-design-binding/1\nplan {plan_sha256}\nct {ct}\n");
    // Both demo guides' templates, by name.
    for (name, file) in [
        ("cutting_guide", "cutting_guide.toml"),
        ("drill_guide", "drill_guide.toml"),
    ] {
        let toml_text = std::fs::read_to_string(templates.join(file)).expect("template");
        let version = toml_text
            .lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .and_then(|v| v.strip_suffix('"'))
            .expect("version");
        text.push_str(&format!(
            "template {name} {version} {}\n",
            file_sha256(&templates.join(file))
        ));
    }
    text.push_str(&format!("printers {}\n", file_sha256(&templates.join("printers.toml"))));
    text.push_str(&format!("screws {}\n", file_sha256(&templates.join("screws.toml"))));
    text.push_str(&format!("software guidesmith {}\n", env!("CARGO_PKG_VERSION")));
    sha256_hex(text.as_bytes())
}

/// Records Dr S. Surgeon's review of `plan` with `extra` arguments (a comment, `--reject`).
fn surgeon_review(plan: &str, extra: &[&str]) -> String {
    let mut args = vec!["approve", plan, "--name", "Dr S. Surgeon", "--role", "surgeon"];
    args.extend_from_slice(extra);
    ok(&args)
}

fn plan_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("plan")).expect("json")
}

#[test]
fn only_a_current_surgeons_approval_releases_the_guides_and_any_change_makes_it_stale() {
    let (tmp, demo) = demo_case();
    let plan_path = demo.join("plan.json");
    let plan = plan_path.to_str().expect("utf-8");
    let out = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_string();

    // No approval: no release, nothing written.
    refused(&["build", plan, "-o", &out("a")], "no surgeon's approval");
    assert!(!tmp.path().join("a").exists());
    // An engineer's approval does not release.
    let engineer = ok(&["approve", plan, "--name", "E. Engineer", "--role", "engineer"]);
    assert!(engineer.starts_with("approved by E. Engineer (engineer)"), "{engineer}");
    refused(&["build", plan, "-o", &out("a")], "no surgeon's approval");

    // The surgeon approves: `plan show` says so, and the build is released.
    surgeon_review(plan, &["--comment", "as discussed"]);
    let doc = plan_json(&plan_path);
    let approvals = doc["approvals"].as_array().expect("approvals");
    assert_eq!(approvals.len(), 2);
    let surgeon = &approvals[1];
    assert_eq!(surgeon["role"], "surgeon");
    assert_eq!(surgeon["decision"], "approved");
    assert_eq!(surgeon["comment"], "as discussed");
    // Bound to exactly the plan, CT, templates, printers, catalogue and software: recomputed independently.
    let design = recomputed_binding(&plan_path, surgeon);
    assert_eq!(surgeon["binding"]["sha256"], design.as_str());
    // Both approvals are bound to the same inputs: approving does not change what is approved.
    assert_eq!(approvals[0]["binding"]["sha256"], design.as_str());
    let shown = ok(&["plan", "show", plan]);
    assert!(shown.contains(&format!("design {design}")), "{shown}");
    let surgeon_line = shown
        .lines()
        .find(|l| l.starts_with("approval approved Dr S. Surgeon (surgeon)"))
        .unwrap_or_else(|| panic!("no surgeon's approval in {shown}"));
    assert!(surgeon_line.contains(": current \"as discussed\""), "{surgeon_line}");
    assert!(shown.contains("release: allowed (approved by Dr S. Surgeon"), "{shown}");
    let built = ok(&["build", plan, "-o", &out("released")]);
    assert!(
        built.contains("release: approved by Dr S. Surgeon (surgeon)"),
        "{built}"
    );
    let released = tmp.path().join("released");
    for name in [
        "DEMO-JAW_symphysis-cutting.stl",
        "DEMO-JAW_left-body-drilling.stl",
        "DEMO-JAW_guides.3mf",
    ] {
        assert!(released.join(name).is_file(), "{name}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(released.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["release"]["status"], "approved");
    assert_eq!(manifest["release"]["surgeon"], "Dr S. Surgeon");
    assert_eq!(manifest["release"]["design_sha256"], design.as_str());
    // Another printer than the approved one is not the approved guide.
    refused(
        &["build", plan, "-o", &out("b"), "--printer", "fdm"],
        "is not the one the surgeon approved",
    );

    // The plan changes: the approval is stale, says which element changed, and the build is refused.
    let plane = doc["planes"][0]["name"].as_str().expect("plane").to_string();
    ok(&["plan", "move", plan, "plane", &plane, "--by", "0.5,0,0"]);
    let shown = ok(&["plan", "show", plan]);
    assert!(
        shown.contains(&format!("STALE: the plan changed: planes/{plane} changed")),
        "{shown}"
    );
    let json: Value = serde_json::from_str(&ok(&["plan", "show", plan, "--json"])).expect("json");
    assert_eq!(json["approvals"][1]["current"], false);
    assert_eq!(
        json["approvals"][1]["changes"][0],
        format!("the plan changed: planes/{plane} changed").as_str()
    );
    let err = refused(&["build", plan, "-o", &out("c")], "is stale");
    assert!(err.contains(&format!("planes/{plane} changed")), "{err}");
    // Approved again, it is released again, bound to the new plan.
    surgeon_review(plan, &[]);
    let again = plan_json(&plan_path);
    let design2 = recomputed_binding(&plan_path, &again["approvals"][2]);
    assert_ne!(design2, design);
    ok(&["build", plan, "-o", &out("released2")]);
    // A rejection by the surgeon withdraws the release.
    surgeon_review(plan, &["--reject", "--comment", "move it back"]);
    refused(&["build", plan, "-o", &out("d")], "rejected the plan");
    surgeon_review(plan, &[]);

    // One byte of the CT's pixel data changes: the build stops before anything is built, drafts too.
    let slice = demo.join("ct").join("s001_i00048.dcm");
    let mut bytes = std::fs::read(&slice).expect("slice");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&slice, &bytes).expect("write slice");
    refused(
        &["build", plan, "-o", &out("e")],
        "the CT differs from the one the plan was made on",
    );
    refused(
        &["build", plan, "-o", &out("e"), "--draft"],
        "the CT differs from the one the plan was made on",
    );
    refused(&["plan", "show", plan], "the CT differs");
    assert!(!tmp.path().join("e").exists());
}

#[test]
fn an_approval_of_a_plan_with_errors_is_refused_and_the_plan_is_unchanged() {
    let (_tmp, demo) = demo_case();
    let plan_path = demo.join("plan.json");
    let plan = plan_path.to_str().expect("utf-8");
    // A drill moved 60 mm off the jaw: its axis no longer meets the bone (an error finding).
    let drill = plan_json(&plan_path)["drills"][0]["name"]
        .as_str()
        .expect("drill")
        .to_string();
    ok(&["plan", "move", plan, "drill", &drill, "--by", "0,0,60"]);
    let before = std::fs::read(&plan_path).expect("plan");
    let err = refused(
        &["approve", plan, "--name", "Dr S", "--role", "surgeon"],
        "cannot approve",
    );
    assert!(err.contains("error finding"), "{err}");
    assert_eq!(
        std::fs::read(&plan_path).expect("plan"),
        before,
        "the plan file is unchanged"
    );
    // A rejection is always recorded.
    ok(&[
        "approve",
        plan,
        "--name",
        "Dr S",
        "--role",
        "surgeon",
        "--reject",
        "--comment",
        "the drill is off",
    ]);
    assert_eq!(plan_json(&plan_path)["approvals"][0]["decision"], "rejected");
}
