//! `guidesmith plan ...` through the binary on the real `ct/cranium-0051` (an adult head CT): a Le Fort I style
//! pair of cuts through the maxilla, fixation drills into the zygomatic buttresses and the anterior maxilla, a
//! structure to keep clear of and a guide, all made with the CLI; `plan show --json` checked against the CT itself;
//! `plan check` exit codes; bad inputs refused with clear messages and exit code 2; write -> read -> write
//! byte-identical.
//!
//! Coordinates (LPS mm) were read off the CT's axial slices: z = -31.5 mm (slice 19 of 108) cuts the maxilla above
//! the palate, through both maxillary sinuses; at z = -25.5 mm the zygomatic buttresses lie at y = -47 to -36 mm,
//! x = +-25 to 50 mm; the anterior maxillary wall crosses x = -8, z = -30 at y = -58 mm.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use guidesmith::progress::NoProgress;
use nalgebra::Point3;
use serde_json::Value;

/// The bone segmentation: the bone preset, the largest component, cropped to the midface (x -55..55, y -85..-5,
/// z -60..-10 mm) so the cuts' sections hold the maxilla, not the skull base behind it.
const CROP: &str = "--crop=-55,-85,-60,55,-5,-10";
/// The upper cut lies exactly on this slice (z = -60 + 19 * 1.5 = -31.5 mm).
const UPPER_SLICE: usize = 19;

fn guidesmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(args)
        .output()
        .expect("run guidesmith")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the command line `line` (split at white space), asserts the exit code, returns stdout.
fn ok(line: &str, code: i32) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    let out = guidesmith(&args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "guidesmith {line}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `line` as [`ok`] does, asserts exit code 1 (refused input, as for every command; 2 is for usage errors) and
/// that stderr says each of `says`; returns stderr.
fn refused(line: &str, says: &[&str]) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    let out = guidesmith(&args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "guidesmith {line} should be refused: {err}");
    for s in says {
        assert!(err.contains(s), "guidesmith {line}: {s:?} not in {err}");
    }
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// Makes the Le Fort plan with the CLI; returns its path.
fn make_plan(ct: &Path, dir: &Path) -> PathBuf {
    let plan = dir.join("lefort.json");
    let p = s(&plan);
    let out = ok(
        &format!(
            "plan new --ct {} --case CR51-LEFORT --preset bone --keep largest {} -o {}",
            s(ct),
            CROP,
            p
        ),
        0,
    );
    assert!(out.contains("bone bounds"), "{out}");
    // Le Fort I impaction: the upper cut axial, the lower one tilted 5 degrees about x (descending anteriorly), the
    // wedge between them removed (thicker in front).
    ok(
        &format!(
            "plan add-plane {p} --name LeFort-upper --point 0,-50,-31.5 \
             --normal 0,0,1 --resect negative"
        ),
        0,
    );
    ok(
        &format!(
            "plan add-plane {p} --name LeFort-lower --point 0,-50,-35 \
             --normal 0,-0.0871557427476582,0.9961946980917455 --resect positive \
             --blade-mm 1.0"
        ),
        0,
    );
    // Fixation drills above the cut: into the right and left zygomatic buttresses (posterior, +y) and the right
    // anterior maxilla (aimed at a target point; its length is the distance to it).
    ok(
        &format!(
            "plan add-drill {p} --name Buttress-R --entry -27,-45,-25.5 \
             --direction 0,1,0 --length-mm 10 --screw-system 1.5"
        ),
        0,
    );
    ok(
        &format!(
            "plan add-drill {p} --name Buttress-L --entry 30,-49,-25.5 \
             --direction 0,1,0 --length-mm 6 --screw-system 1.5"
        ),
        0,
    );
    ok(
        &format!(
            "plan add-drill {p} --name Maxilla-R --entry -8,-60,-30 \
             --target -8,-51,-30 --diameter-mm 1.1"
        ),
        0,
    );
    ok(
        &format!(
            "plan add-structure {p} --name keep-clear --kind other \
             --points -22,-40,-30;-22,-40,-20 --radius-mm 1 --margin-mm 1"
        ),
        0,
    );
    ok(
        &format!("plan add-landmark {p} --name midline-cut --point 0,-60,-31.5"),
        0,
    );
    ok(
        &format!(
            "plan add-guide {p} --name LeFort-guide --template combined_guide \
             --planes LeFort-upper,LeFort-lower --drills Buttress-R,Buttress-L \
             --seating 0,1,0 \
             --footprint -35,-62,-40;35,-62,-40;35,-62,-20;-35,-62,-20"
        ),
        0,
    );
    plan
}

/// Bone area of one axial slice of the CT, mm^2: voxels at or above 226 HU (the bone preset) inside the crop.
fn thresholded_slice_area_mm2(volume: &guidesmith::volume::Volume, k: usize) -> f64 {
    let g = &volume.geometry;
    let mut n = 0usize;
    for j in 0..g.dims[1] {
        for i in 0..g.dims[0] {
            let p = g.to_patient([i as f64, j as f64, k as f64]);
            if (-55.0..=55.0).contains(&p.x) && (-85.0..=-5.0).contains(&p.y) && volume.hu[g.index(i, j, k)] >= 226 {
                n += 1;
            }
        }
    }
    n as f64 * g.spacing_mm[0] * g.spacing_mm[1]
}

/// HU of the voxel nearest to `p`.
fn hu_at(volume: &guidesmith::volume::Volume, p: [f64; 3]) -> i16 {
    let g = &volume.geometry;
    let v = g.to_voxel(Point3::from(p)).map(|c| c.round() as usize);
    volume.hu[g.index(v[0], v[1], v[2])]
}

#[test]
fn lefort_plan_on_the_cranium_through_the_cli() {
    let Some(ct) = common::data("ct/cranium-0051") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = make_plan(&ct, tmp.path());
    let p = s(&plan);

    // Write -> read -> write is byte-identical (setting a field to its own value rewrites the file).
    let before = std::fs::read(&plan).expect("plan");
    ok(&format!("plan set {p} plane LeFort-upper blade_thickness_mm 1.0"), 0);
    assert_eq!(
        before,
        std::fs::read(&plan).expect("plan"),
        "write -> read -> write changed the bytes"
    );

    let doc: Value = serde_json::from_str(&ok(&format!("plan show {p} --json"), 0)).expect("show --json is JSON");
    let e = &doc["evaluation"];
    assert_eq!(doc["case_id"], "CR51-LEFORT");
    assert_eq!(e["findings"], Value::Array(vec![]), "the clean plan has no finding");

    // The cuts: closed sections of plausible size, checked against the CT's own slice.
    let (volume, _) = guidesmith::volume::load(&ct, None, &NoProgress).expect("load the CT");
    let slice_area = thresholded_slice_area_mm2(&volume, UPPER_SLICE);
    for name in ["LeFort-upper", "LeFort-lower"] {
        let plane = by_name(&e["planes"], name);
        assert_eq!(plane["cuts_bone"], true);
        assert_eq!(plane["open_loops"], 0);
        assert!(plane["loops"]
            .as_array()
            .expect("loops")
            .iter()
            .all(|l| l["closed"] == true));
        let (area, perimeter) = (f(&plane["area_mm2"]), f(&plane["perimeter_mm"]));
        eprintln!(
            "{name}: {} loops, area {area:.1} mm^2, perimeter {perimeter:.1} mm",
            plane["loop_count"]
        );
        assert!((400.0..1500.0).contains(&area), "{name} area {area}");
        assert!((300.0..900.0).contains(&perimeter), "{name} perimeter {perimeter}");
    }
    // The upper cut lies on slice 19: its section is that slice's iso-contour, whose area is the thresholded pixel
    // area up to the half-pixel rim of thin walls (the contour runs half way between a bone and an air pixel).
    let upper = by_name(&e["planes"], "LeFort-upper");
    let ratio = f(&upper["area_mm2"]) / slice_area;
    eprintln!(
        "upper section {:.1} mm^2 vs slice {UPPER_SLICE} thresholded {slice_area:.1} mm^2: ratio {ratio:.3}",
        f(&upper["area_mm2"])
    );
    assert!(
        (0.8..1.1).contains(&ratio),
        "section area / thresholded slice area = {ratio}"
    );
    assert!(
        (f(&upper["centroid_mm"][2]) + 31.5).abs() < 1e-9,
        "the centroid lies in the plane"
    );

    let pair = &e["plane_pairs"][0];
    assert_eq!(pair["between"], "resected");
    assert!((f(&pair["angle_deg"]) - 5.0).abs() < 0.01, "{pair}");
    let wedge = f(&pair["centroid_distance_mm"]);
    assert!((1.5..4.5).contains(&wedge), "resected wedge height {wedge}");

    // The drills: bicortical, a few mm of bone, entering and leaving where the CT has bone and not beyond.
    for (name, lo, hi) in [
        ("Buttress-R", 5.0, 9.0),
        ("Buttress-L", 2.0, 5.0),
        ("Maxilla-R", 4.5, 6.5),
    ] {
        let d = by_name(&e["drills"], name);
        assert_eq!(d["kind"], "bicortical", "{name}: {d}");
        let length = f(&d["bicortical_length_mm"]);
        eprintln!(
            "{name}: bicortical {length:.2} mm, entry y {:.2}, exit y {:.2}, tip past exit {:.2} mm",
            f(&d["entry"]["point_mm"][1]),
            f(&d["exit"]["point_mm"][1]),
            f(&d["tip_past_exit_mm"])
        );
        assert!((lo..hi).contains(&length), "{name}: bicortical {length} mm");
        let first = &d["intervals"][0];
        let t = 0.5 * (f(&first["start_t_mm"]) + f(&first["end_t_mm"]));
        let (entry, dir) = (&d["planned_entry_mm"], &d["direction"]);
        let mid = [0, 1, 2].map(|i| f(&entry[i]) + t * f(&dir[i]));
        assert!(
            hu_at(&volume, mid) >= 226,
            "{name}: the middle of its first bone stretch is not bone in the CT"
        );
        let before_entry = [0, 1, 2].map(|i| f(&d["entry"]["point_mm"][i]) - 2.5 * f(&dir[i]));
        assert!(
            hu_at(&volume, before_entry) < 226,
            "{name}: 2.5 mm before its entry is still bone in the CT"
        );
    }
    let r = by_name(&e["drills"], "Buttress-R");
    assert_eq!(r["screw"]["system"], "1.5");
    assert!(
        (f(&r["diameter_mm"]) - 1.1).abs() < 1e-12,
        "diameter from the catalogue"
    );
    assert!(
        (f(&by_name(&e["drills"], "Maxilla-R")["length_mm"]) - 9.0).abs() < 1e-12,
        "length from --target"
    );
    // keep-clear runs at x = -22, y = -40: 5 mm from Buttress-R's axis; clearance 5 - 0.55 - 1 mm.
    let c = &r["clearances"][0];
    assert!(
        (f(&c["axis_distance_mm"]) - 5.0).abs() < 1e-9 && (f(&c["clearance_mm"]) - 3.45).abs() < 1e-9,
        "{c}"
    );
    assert_eq!(e["guides"][0]["resolved"], true);

    // The table names every element.
    let table = ok(&format!("plan show {p}"), 0);
    for name in [
        "LeFort-upper",
        "LeFort-lower",
        "Buttress-R",
        "Buttress-L",
        "Maxilla-R",
        "keep-clear",
        "midline-cut",
        "LeFort-guide",
    ] {
        assert!(table.contains(name), "{name} missing from the table:\n{table}");
    }
    assert!(table.contains("0 errors, 0 warnings"), "{table}");

    // plan check: clean -> 0; the structure moved 2.6 mm towards Buttress-R -> within its margin -> 1.
    assert!(ok(&format!("plan check {p}"), 0).contains("0 errors"));
    ok(&format!("plan move {p} structure keep-clear --by -2.6,0,0"), 0);
    let report = ok(&format!("plan check {p}"), 1);
    assert!(
        report.contains("ERROR   drills/Buttress-R") && report.contains("within its margin of 1 mm"),
        "{report}"
    );
    assert!(report.contains("1 errors, 0 warnings"), "{report}");
    ok(&format!("plan remove {p} structure keep-clear"), 0);
    // A drill along the upper cut, 0.3 mm below it, runs in its blade slab through the bone.
    ok(
        &format!(
            "plan add-drill {p} --name Through-cut --entry -8,-62,-31.8 \
             --direction 0,1,0 --length-mm 12 --diameter-mm 1.1"
        ),
        0,
    );
    let report = ok(&format!("plan check {p}"), 1);
    assert!(
        report.contains("crosses the blade slab of plane 'LeFort-upper'"),
        "{report}"
    );
    ok(&format!("plan remove {p} drill Through-cut"), 0);
    ok(&format!("plan check {p}"), 0);

    // Refused inputs: exit 2, a message naming the value, the file untouched.
    let before = std::fs::read(&plan).expect("plan");
    refused(
        &format!(
            "plan add-guide {p} --name G2 --template cutting_guide --planes Nope \
             --seating 0,1,0 --footprint 0,0,0;1,0,0;0,1,0"
        ),
        &["no plane named 'Nope'", "guides[1].planes[0]"],
    );
    refused(
        &format!("plan remove {p} plane LeFort-upper"),
        &["used by guide 'LeFort-guide'"],
    );
    refused(
        &format!("plan set {p} drill Buttress-R length_mm \"long\""),
        &["drills[0].length_mm", "invalid type"],
    );
    refused(
        &format!("plan add-drill {p} --name D --entry 0,0,0 --direction 0,1,0 --length-mm 5"),
        &["--diameter-mm"],
    );
    refused(
        &format!("plan new --ct {} --case X --preset bone -o {}", s(&ct), p),
        &["exists; give --force"],
    );
    assert_eq!(
        before,
        std::fs::read(&plan).expect("plan"),
        "a refused edit changed the file"
    );

    // Another CT: the hash differs, and the message says what differs.
    let Some(other) = common::data("dicom/syntaxes/CT2_UNC") else {
        return;
    };
    refused(
        &format!("plan check {} --ct {}", p, s(&other)),
        &[
            "differs from the one the plan was made on",
            "dims differ (256 x 256 x 108 expected",
        ],
    );

    // Hand-edited files: a wrong type, an unknown field, a missing reference.
    let json = text(&before);
    for (name, from, to, says) in [
        (
            "wrong-type.json",
            "\"blade_thickness_mm\": 1.0",
            "\"blade_thickness_mm\": \"thin\"",
            "planes[0].blade_thickness_mm",
        ),
        (
            "unknown-field.json",
            "\"resected_side\": \"negative\"",
            "\"resected_side\": \"negative\", \"colour\": \"red\"",
            "unknown field `colour`",
        ),
        (
            "missing-ref.json",
            "\"LeFort-lower\"\n      ],",
            "\"LeFort-middle\"\n      ],",
            "no plane named 'LeFort-middle'",
        ),
    ] {
        assert!(json.contains(from), "{from} not in the plan");
        let edited = tmp.path().join(name);
        std::fs::write(&edited, json.replacen(from, to, 1)).expect("write");
        refused(&format!("plan show {}", s(&edited)), &[name, says]);
    }

    // The schema the CLI prints is the committed one.
    let schema = ok("plan schema", 0);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.schema.json")).expect("schema");
    assert_eq!(schema, committed);
}
