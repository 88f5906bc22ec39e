//! The plan document: byte-identical round trips, clear errors naming the JSON path or file, edits with exact
//! undo/redo, the CT hash, and the committed JSON Schema.

mod common;

use std::collections::BTreeMap;

use guidesmith::grid::GridGeometry;
use guidesmith::plan::{
    ct_sha256, json_schema, Approval, BoneModelRef, BoneSource, CaseId, CtReference, CuttingPlane, Decision,
    DesignBinding, DrillTrajectory, Edit, Element, ElementKind, Footprint, GuideSpec, History, Landmark, Plan,
    PlanError, ResectedSide, Role, Segmentation, Structure, StructureKind, TemplateHash, SCHEMA_VERSION,
};
use guidesmith::segment::{BoxMm, HuRange, Keep, SegmentRecipe};
use guidesmith::synth::Phantom;
use guidesmith::volume::{SeriesInfo, Volume};
use proptest::prelude::*;
use serde_json::json;

fn unit(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// A plan with every kind of element and awkward floats.
fn full_plan() -> Plan {
    let mut recipe = SegmentRecipe::new(HuRange::BONE);
    recipe.keep = Keep::Largest;
    recipe.close_mm = 0.1 + 0.2;
    recipe.crops.push(BoxMm {
        min_mm: [-80.0, -1e-300, -0.0],
        max_mm: [80.0, 90.5, 1.0 / 3.0],
    });
    Plan {
        reconstruction: None,
        schema_version: SCHEMA_VERSION,
        case_id: CaseId::new("case-0007").expect("valid id"),
        ct: Some(CtReference {
            path: "ct/series".into(),
            series_uid: "2.25.1234".into(),
            volume_sha256: "ab".repeat(32),
            dims: [512, 512, 300],
            spacing_mm: [0.488_281_25, 0.488_281_25, 0.625],
            origin_mm: [-125.0, -0.0, 5e-324],
            axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            rescale_intercept_override_hu: Some(-1024.0),
        }),
        bone: BoneSource {
            segmentation: Some(Segmentation {
                recipe,
                smooth_iterations: 10,
                decimate_keep_fraction: Some(0.1 + 0.2),
            }),
            models: vec![BoneModelRef {
                name: "maxilla".into(),
                path: "models/maxilla.stl".into(),
                sha256: "0f".repeat(32),
            }],
        },
        landmarks: vec![
            Landmark {
                name: "menton".into(),
                point_mm: [0.1 + 0.2, -1e-300, 1.797_693_134_862_315_7e308],
            },
            Landmark {
                name: "nasion".into(),
                point_mm: [-0.0, 2.0 / 3.0, 123_456_789.123_456_78],
            },
        ],
        structures: vec![Structure {
            name: "IAN left".into(),
            kind: StructureKind::Nerve,
            points_mm: vec![[30.1, 10.2, -40.3], [31.7, 20.0, -41.0], [32.0, 30.0, -39.9]],
            radius_mm: 1.2,
            margin_mm: 1.5,
        }],
        planes: vec![
            CuttingPlane {
                name: "Le Fort I".into(),
                point_mm: [0.0, 10.0, -20.0],
                normal: [-0.0, 0.0, 1.0],
                blade_thickness_mm: 0.4,
                resected_side: ResectedSide::Negative,
            },
            CuttingPlane {
                name: "distal".into(),
                point_mm: [40.0, 30.0, -45.0],
                normal: unit([1.0, 1.0 / 3.0, 0.1 + 0.2]),
                blade_thickness_mm: 1.0,
                resected_side: ResectedSide::Positive,
            },
        ],
        drills: vec![
            DrillTrajectory {
                name: "screw 1".into(),
                entry_mm: [10.0, -30.0, -25.0],
                direction: unit([0.1, 1.0, -0.2]),
                length_mm: 6.0,
                diameter_mm: 1.5,
                screw_system: Some("2.0".into()),
            },
            DrillTrajectory {
                name: "pilot".into(),
                entry_mm: [-10.0, -30.0, -25.0],
                direction: [0.0, 1.0, 0.0],
                length_mm: 12.5,
                diameter_mm: 0.5,
                screw_system: None,
            },
        ],
        guides: vec![GuideSpec {
            bone: Default::default(),
            name: "maxilla guide".into(),
            template: "cutting_slot".into(),
            printer: "sla".into(),
            parameters: BTreeMap::from([
                ("pad_thickness_mm".to_string(), 2.5),
                ("clearance_mm".to_string(), 0.15),
            ]),
            planes: vec!["Le Fort I".into()],
            drills: vec!["screw 1".into(), "pilot".into()],
            seating_direction: [0.0, 1.0, 0.0],
            footprint: Footprint {
                outline_mm: vec![
                    [-20.0, -30.0, -30.0],
                    [20.0, -30.0, -30.0],
                    [20.0, -30.0, -10.0],
                    [-20.0, -30.0, -10.0],
                ],
            },
            label: None,
        }],
        approvals: vec![Approval {
            role: Role::Surgeon,
            reviewer: "reviewer A".into(),
            decision: Decision::Rejected,
            at_utc: "2026-12-07T08:15:00Z".into(),
            comment: "move the cut 2 mm up".into(),
            binding: DesignBinding::new(
                "12".repeat(32),
                None,
                BTreeMap::from([(
                    "cutting_slot".to_string(),
                    TemplateHash {
                        version: "1.0.0".into(),
                        sha256: "34".repeat(32),
                    },
                )]),
                "56".repeat(32),
                "78".repeat(32),
                "guidesmith 0.1.0".into(),
            ),
        }],
    }
}

fn err_text(r: Result<Plan, PlanError>) -> String {
    match r {
        Ok(_) => String::from("(no error)"),
        Err(e) => e.to_string(),
    }
}

/// The full plan's JSON with `change` applied to its `serde_json::Value`.
fn edited_json(change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&full_plan().to_json()).expect("plan JSON parses");
    change(&mut v);
    serde_json::to_string_pretty(&v).expect("serialise")
}

#[test]
fn full_plan_round_trips_byte_identical() {
    let plan = full_plan();
    plan.validate().expect("the full plan is valid");
    let text = plan.to_json();
    assert!(text.ends_with("}\n") && text.starts_with("{\n  \"schema_version\": 2,\n  \"case_id\": \"case-0007\""));
    for awkward in [
        "0.30000000000000004",
        "1e-300",
        "-0.0",
        "5e-324",
        "1.7976931348623157e+308",
    ] {
        assert!(text.contains(awkward), "{awkward} missing from {text}");
    }
    let back = Plan::from_json(&text).expect("reads back");
    assert_eq!(back.to_json(), text);
    assert_eq!(back.sha256(), plan.sha256());
    assert_eq!(
        back.planes[0].normal[0].to_bits(),
        (-0.0f64).to_bits(),
        "negative zero survives"
    );

    // Through a file, atomically written.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.json");
    plan.save(&path).expect("save");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    assert_eq!(Plan::load(&path).expect("load").to_json(), text);
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn bad_documents_name_the_json_path() {
    let cases: Vec<(String, &str)> = vec![
        (
            edited_json(|v| v["planes"][1]["normal"] = json!("x")),
            "planes[1].normal: invalid type: string \"x\", expected an array",
        ),
        (
            edited_json(|v| v["planes"][0]["colour"] = json!("red")),
            "planes[0].colour: unknown field `colour`",
        ),
        (
            edited_json(|v| {
                v["drills"][0].as_object_mut().expect("object").remove("screw_system");
            }),
            "drills[0]: missing field `screw_system`",
        ),
        (
            edited_json(|v| {
                v.as_object_mut().expect("object").remove("approvals");
            }),
            "document: missing field `approvals`",
        ),
        (
            // An optional value must still be present, as null.
            edited_json(|v| {
                v.as_object_mut().expect("object").remove("ct");
            }),
            "document: missing field `ct`",
        ),
        (
            edited_json(|v| v["schema_version"] = json!(0)),
            "schema_version: version 0 is not supported (this build reads versions 1 to 2)",
        ),
        (
            // A version 2 guide must name its printer.
            edited_json(|v| {
                v["guides"][0].as_object_mut().expect("guide").remove("printer");
            }),
            "guides[0]: missing field `printer`",
        ),
        (
            // A future version with a new field: the version is the error, not the field.
            edited_json(|v| {
                v["schema_version"] = json!(3);
                v["planes"][0]["kerf_mm"] = json!(1.0);
            }),
            "schema_version: version 3 is not supported",
        ),
        (
            edited_json(|v| v["planes"][0]["normal"] = json!([0.0, 2.0, 0.0])),
            "planes[0].normal: not a unit vector (length 2.000)",
        ),
        (
            edited_json(|v| v["guides"][0]["planes"][0] = json!("Le Fort II")),
            "guides[0].planes[0]: no plane named 'Le Fort II' in the plan",
        ),
        (
            edited_json(|v| v["guides"][0]["drills"] = json!(["pilot", "drill 9"])),
            "guides[0].drills[1]: no drill named 'drill 9' in the plan",
        ),
        (
            edited_json(|v| v["drills"][1]["name"] = json!("screw 1")),
            "drills[1].name: duplicate name 'screw 1'",
        ),
        (
            edited_json(|v| v["planes"][0]["blade_thickness_mm"] = json!("NaN")),
            "planes[0].blade_thickness_mm: invalid type: string \"NaN\", expected f64",
        ),
        (
            edited_json(|v| v["planes"][0]["blade_thickness_mm"] = json!(3.5)),
            "planes[0].blade_thickness_mm: 3.5 is outside 0.4..=1.25 mm",
        ),
        (
            edited_json(|v| v["drills"][0]["screw_system"] = json!("2.7")),
            "drills[0].screw_system: unknown screw system '2.7' (known: 1.5, 2.0, 2.3, 2.4)",
        ),
        (
            edited_json(|v| v["case_id"] = json!("../x")),
            "case_id: case id \"../x\" may only hold",
        ),
        (
            edited_json(|v| v["structures"][0]["kind"] = json!("artery")),
            "structures[0].kind: unknown variant `artery`",
        ),
        (
            edited_json(|v| v["structures"][0]["radius_mm"] = json!(-1.0)),
            "structures[0].radius_mm: -1 must not be negative",
        ),
        (
            edited_json(|v| v["guides"][0]["footprint"]["outline_mm"] = json!([[0, 0, 0], [1, 0, 0]])),
            "guides[0].footprint.outline_mm: 2 points; a closed outline needs at least 3",
        ),
        (
            edited_json(|v| v["ct"]["volume_sha256"] = json!("ABC")),
            "ct.volume_sha256: 'ABC' is not a SHA-256",
        ),
        (
            edited_json(|v| v["bone"]["segmentation"]["recipe"]["hu"] = json!({"min_hu": 500, "max_hu": 100})),
            "bone.segmentation.recipe.hu: ",
        ),
    ];
    for (text, expected) in &cases {
        let e = err_text(Plan::from_json(text));
        assert!(e.starts_with(expected), "expected {expected:?}, got {e:?}");
    }

    // Not JSON at all: NaN literals, truncation, trailing garbage.
    let text = full_plan().to_json();
    let nan = text.replacen("\"blade_thickness_mm\": 0.4", "\"blade_thickness_mm\": NaN", 1);
    assert!(err_text(Plan::from_json(&nan)).starts_with("invalid JSON: expected value at line"));
    let truncated = &text[..text.len() / 2];
    assert!(err_text(Plan::from_json(truncated)).starts_with("invalid JSON: EOF while parsing"));
    let trailing = format!("{text}{{}}");
    assert!(err_text(Plan::from_json(&trailing)).starts_with("invalid JSON: trailing characters"));
    let huge = text.replacen("\"length_mm\": 6.0", "\"length_mm\": 1e999", 1);
    let e = err_text(Plan::from_json(&huge));
    assert!(e.contains("number out of range"), "{e}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-plan.json");
    let e = err_text(Plan::load(&missing));
    assert!(
        e.starts_with("cannot read plan ") && e.contains("no-such-plan.json"),
        "{e}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, edited_json(|v| v["planes"][0]["normal"] = json!([0.0, 0.0, 0.5]))).expect("write");
    let e = err_text(Plan::load(&bad));
    assert!(
        e.ends_with("bad.json: planes[0].normal: not a unit vector (length 0.500)"),
        "{e}"
    );

    // An invalid plan is not saved.
    let mut plan = full_plan();
    plan.drills[0].length_mm = f64::NAN;
    let target = dir.path().join("out.json");
    let e = plan.save(&target).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("drills[0].length_mm: NaN is not a finite number"), "{e}");
    assert!(!target.exists());
}

fn plane(name: &str) -> CuttingPlane {
    CuttingPlane {
        name: name.into(),
        point_mm: [1.0, 2.0, 3.0],
        normal: [0.0, 0.0, 2.0],
        blade_thickness_mm: 1.0,
        resected_side: ResectedSide::None,
    }
}

#[test]
fn each_edit_kind_and_its_exact_undo() {
    let mut plan = full_plan();
    let start = plan.to_json();

    // Add normalises directions; undo removes it.
    let undo = plan.apply(Edit::Add(Element::Plane(plane("new")))).expect("add");
    assert_eq!(plan.planes[2].normal, [0.0, 0.0, 1.0]);
    undo.apply_to(&mut plan).expect("undo add");
    assert_eq!(plan.to_json(), start);

    // Translate moves every point.
    let undo = plan
        .apply(Edit::Translate {
            kind: ElementKind::Structure,
            name: "IAN left".into(),
            delta_mm: [0.1, 0.2, 0.3],
        })
        .expect("translate");
    assert_eq!(plan.structures[0].points_mm[2], [32.0 + 0.1, 30.0 + 0.2, -39.9 + 0.3]);
    undo.apply_to(&mut plan).expect("undo translate");
    assert_eq!(plan.to_json(), start);

    // Rotate a drill 90 degrees about z through its entry: the entry stays, +y turns to -x.
    let undo = plan
        .apply(Edit::Rotate {
            kind: ElementKind::Drill,
            name: "pilot".into(),
            axis: [0.0, 0.0, 5.0],
            angle_deg: 90.0,
            pivot_mm: None,
        })
        .expect("rotate");
    assert_eq!(plan.drills[1].entry_mm, [-10.0, -30.0, -25.0]);
    let d = plan.drills[1].direction;
    assert!(
        (d[0] + 1.0).abs() < 1e-12 && d[1].abs() < 1e-12 && d[2].abs() < 1e-12,
        "{d:?}"
    );
    // ... and a landmark about an explicit pivot.
    let redo = undo.apply_to(&mut plan).expect("undo rotate");
    assert_eq!(plan.to_json(), start);
    redo.apply_to(&mut plan).expect("redo rotate");
    assert_eq!(plan.drills[1].direction, d);
    let undo_pivot = plan
        .apply(Edit::Rotate {
            kind: ElementKind::Landmark,
            name: "nasion".into(),
            axis: [1.0, 0.0, 0.0],
            angle_deg: 180.0,
            pivot_mm: Some([0.0, 0.0, 0.0]),
        })
        .expect("rotate about a pivot");
    assert!((plan.landmarks[1].point_mm[2] + 123_456_789.123_456_78).abs() < 1e-6);
    undo_pivot.apply_to(&mut plan).expect("undo");
    undo.apply_to(&mut plan).expect("undo rotate again");
    assert_eq!(plan.to_json(), start);

    // Set a number, a nested map entry (added, then removed with null), an option.
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Plane,
            name: "distal".into(),
            field: "blade_thickness_mm".into(),
            value: json!(1.25),
        })
        .expect("set thickness");
    assert_eq!(plan.planes[1].blade_thickness_mm, 1.25);
    undo.apply_to(&mut plan).expect("undo");
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Guide,
            name: "maxilla guide".into(),
            field: "parameters.sleeve_height_mm".into(),
            value: json!(4.0),
        })
        .expect("set parameter");
    assert_eq!(plan.guides[0].parameters.get("sleeve_height_mm"), Some(&4.0));
    undo.apply_to(&mut plan).expect("undo");
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Guide,
            name: "maxilla guide".into(),
            field: "parameters.clearance_mm".into(),
            value: serde_json::Value::Null,
        })
        .expect("remove parameter");
    assert!(!plan.guides[0].parameters.contains_key("clearance_mm"));
    undo.apply_to(&mut plan).expect("undo");
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Drill,
            name: "screw 1".into(),
            field: "screw_system".into(),
            value: serde_json::Value::Null,
        })
        .expect("clear screw system");
    assert_eq!(plan.drills[0].screw_system, None);
    undo.apply_to(&mut plan).expect("undo");
    // Setting a direction normalises it.
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Drill,
            name: "pilot".into(),
            field: "direction".into(),
            value: json!([0.0, 0.0, -3.0]),
        })
        .expect("set direction");
    assert_eq!(plan.drills[1].direction, [0.0, 0.0, -1.0]);
    undo.apply_to(&mut plan).expect("undo");
    assert_eq!(plan.to_json(), start);

    // Renaming a plane updates the guide; undo restores both.
    let undo = plan
        .apply(Edit::Set {
            kind: ElementKind::Plane,
            name: "Le Fort I".into(),
            field: "name".into(),
            value: json!("LF1"),
        })
        .expect("rename");
    assert_eq!(plan.planes[0].name, "LF1");
    assert_eq!(plan.guides[0].planes, ["LF1"]);
    undo.apply_to(&mut plan).expect("undo rename");
    assert_eq!(plan.to_json(), start);

    // Remove an unreferenced element, undo puts it back at its index.
    let undo = plan
        .apply(Edit::Remove {
            kind: ElementKind::Landmark,
            name: "menton".into(),
        })
        .expect("remove");
    assert_eq!(plan.landmarks.len(), 1);
    undo.apply_to(&mut plan).expect("undo remove");
    assert_eq!(plan.to_json(), start);

    // Case ID.
    let undo = plan
        .apply(Edit::SetCaseId(CaseId::new("case-0008").expect("id")))
        .expect("set case id");
    assert_eq!(plan.case_id.as_str(), "case-0008");
    undo.apply_to(&mut plan).expect("undo");
    assert_eq!(plan.to_json(), start);
}

#[test]
fn failed_edits_leave_the_plan_unchanged_and_say_why() {
    let mut plan = full_plan();
    let start = plan.to_json();
    let failures: Vec<(Edit, &str)> = vec![
        (
            Edit::Remove {
                kind: ElementKind::Plane,
                name: "Le Fort I".into(),
            },
            "plane 'Le Fort I' is used by guide 'maxilla guide'",
        ),
        (
            Edit::Remove {
                kind: ElementKind::Drill,
                name: "nope".into(),
            },
            "no drill named 'nope' (known: screw 1, pilot)",
        ),
        (Edit::Add(Element::Plane(plane("distal"))), "planes[2].name: duplicate name 'distal'"),
        (
            Edit::Add(Element::Plane(CuttingPlane {
                normal: [0.0; 3],
                ..plane("flat")
            })),
            "planes[2].normal: not a unit vector (length 0.000)",
        ),
        (
            Edit::Set {
                kind: ElementKind::Plane,
                name: "distal".into(),
                field: "thickness".into(),
                value: json!(1.0),
            },
            "plane 'distal' has no field 'thickness' (fields: blade_thickness_mm, name, normal, point_mm, resected_side)",
        ),
        (
            Edit::Set {
                kind: ElementKind::Plane,
                name: "distal".into(),
                field: "blade_thickness_mm".into(),
                value: json!(9.0),
            },
            "planes[1].blade_thickness_mm: 9 is outside 0.4..=1.25 mm",
        ),
        (
            Edit::Set {
                kind: ElementKind::Drill,
                name: "pilot".into(),
                field: "entry_mm".into(),
                value: json!([1, "x", 3]),
            },
            "drills[1].entry_mm[1]: invalid type: string \"x\"",
        ),
        (
            Edit::Set {
                kind: ElementKind::Drill,
                name: "pilot".into(),
                field: "name".into(),
                value: json!("screw 1"),
            },
            "drills[1].name: duplicate name 'screw 1'",
        ),
        (
            Edit::Set {
                kind: ElementKind::Guide,
                name: "maxilla guide".into(),
                field: "template.x".into(),
                value: json!(1),
            },
            "invalid edit: guide 'maxilla guide': 'template' is not a map",
        ),
        (
            Edit::Rotate {
                kind: ElementKind::Plane,
                name: "distal".into(),
                axis: [0.0; 3],
                angle_deg: 10.0,
                pivot_mm: None,
            },
            "invalid edit: rotation by 10 deg",
        ),
        (
            Edit::Translate {
                kind: ElementKind::Guide,
                name: "maxilla guide".into(),
                delta_mm: [f64::INFINITY, 0.0, 0.0],
            },
            "invalid edit: translation",
        ),
    ];
    let mut history = History::new();
    for (edit, expected) in failures {
        let e = history
            .apply(&mut plan, edit)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with(expected), "expected {expected:?}, got {e:?}");
        assert_eq!(plan.to_json(), start, "plan unchanged after {expected}");
    }
    assert!(!history.can_undo());
}

#[test]
fn edits_serialise_with_snake_case_tags() {
    let edits = vec![
        Edit::Add(Element::Landmark(Landmark {
            name: "gonion".into(),
            point_mm: [1.0, 2.0, 3.0],
        })),
        Edit::Rotate {
            kind: ElementKind::Drill,
            name: "pilot".into(),
            axis: [0.0, 0.0, 1.0],
            angle_deg: 15.0,
            pivot_mm: None,
        },
        Edit::Set {
            kind: ElementKind::Guide,
            name: "g".into(),
            field: "parameters.pad_thickness_mm".into(),
            value: json!(2.0),
        },
        Edit::SetCaseId(CaseId::new("c1").expect("id")),
    ];
    let text = serde_json::to_string(&edits).expect("serialise");
    assert!(text.starts_with(r#"[{"add":{"landmark":{"name":"gonion""#), "{text}");
    assert!(text.contains(r#"{"rotate":{"kind":"drill","name":"pilot""#), "{text}");
    assert!(text.contains(r#"{"set_case_id":"c1"}"#), "{text}");
    let back: Vec<Edit> = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, edits);
    assert!(serde_json::from_str::<Edit>(r#"{"remove":{"kind":"plane","name":"x","extra":1}}"#).is_err());
    let no_pivot = r#"{"rotate":{"kind":"plane","name":"x","axis":[0,0,1],"angle_deg":1}}"#;
    let e = serde_json::from_str::<Edit>(no_pivot)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("missing field `pivot_mm`"), "{e}");
}

/// A random valid edit of `plan` chosen by `seed` words (deterministic).
fn random_edit(plan: &Plan, pick: &[u32; 4], step: usize) -> Edit {
    let kinds = [
        ElementKind::Landmark,
        ElementKind::Structure,
        ElementKind::Plane,
        ElementKind::Drill,
        ElementKind::Guide,
    ];
    let kind = kinds[pick[0] as usize % kinds.len()];
    let names = plan.names(kind);
    let f = |x: u32| f64::from(x % 2000) / 7.0 - 140.0;
    if names.is_empty() || pick[1].is_multiple_of(7) {
        let name = format!("added {step}");
        return Edit::Add(match kind {
            ElementKind::Landmark | ElementKind::Structure | ElementKind::Guide => Element::Landmark(Landmark {
                name,
                point_mm: [f(pick[2]), f(pick[3]), 0.1 + 0.2],
            }),
            ElementKind::Plane => Element::Plane(CuttingPlane {
                name,
                point_mm: [f(pick[2]), 1.0 / 3.0, f(pick[3])],
                normal: [f(pick[2]), f(pick[3]), 1.0],
                blade_thickness_mm: 0.7,
                resected_side: ResectedSide::Positive,
            }),
            ElementKind::Drill => Element::Drill(DrillTrajectory {
                name,
                entry_mm: [f(pick[3]), f(pick[2]), -1e-300],
                direction: [1.0, f(pick[2]), f(pick[3])],
                length_mm: 8.0,
                diameter_mm: 1.1,
                screw_system: Some("1.5".into()),
            }),
        });
    }
    let name = names[pick[2] as usize % names.len()].to_string();
    match pick[1] % 6 {
        0 | 1 => Edit::Translate {
            kind,
            name,
            delta_mm: [f(pick[3]), 0.1, -f(pick[2])],
        },
        2 => Edit::Rotate {
            kind,
            name,
            axis: [f(pick[2]), 1.0, f(pick[3])],
            angle_deg: f(pick[3]),
            pivot_mm: if pick[3].is_multiple_of(2) {
                None
            } else {
                Some([f(pick[2]), 0.0, 1.0])
            },
        },
        3 => Edit::Set {
            kind,
            name: name.clone(),
            field: "name".into(),
            value: json!(format!("{name}'")),
        },
        4 => Edit::Remove { kind, name },
        _ => Edit::SetCaseId(CaseId::new(&format!("case-{}", pick[3] % 100)).expect("id")),
    }
}

proptest! {
    #![proptest_config(common::proptest_config(48))]

    #[test]
    fn random_edits_undo_and_redo_exactly(picks in prop::collection::vec(any::<[u32; 4]>(), 1..40)) {
        let mut plan = full_plan();
        let start = plan.to_json();
        let mut history = History::new();
        let mut applied = 0usize;
        for (step, pick) in picks.iter().enumerate() {
            let edit = random_edit(&plan, pick, step);
            let before = plan.to_json();
            match history.apply(&mut plan, edit) {
                Ok(()) => applied += 1,
                // Removing a referenced plane/drill, or a rename colliding: refused, plan unchanged.
                Err(_) => prop_assert_eq!(&plan.to_json(), &before),
            }
        }
        let end = plan.to_json();
        prop_assert!(Plan::from_json(&end).is_ok(), "every state reached by edits is a valid document");
        for _ in 0..applied {
            prop_assert!(history.undo(&mut plan).expect("undo"));
        }
        prop_assert!(!history.undo(&mut plan).expect("nothing left"));
        prop_assert_eq!(&plan.to_json(), &start);
        for _ in 0..applied {
            prop_assert!(history.redo(&mut plan).expect("redo"));
        }
        prop_assert!(!history.can_redo());
        prop_assert_eq!(&plan.to_json(), &end);

        // A new edit after an undo clears the redo stack.
        if applied > 0 {
            history.undo(&mut plan).expect("undo");
            prop_assert!(history.can_redo());
            history
                .apply(&mut plan, Edit::SetCaseId(CaseId::new("fresh").expect("id")))
                .expect("edit");
            prop_assert!(!history.can_redo());
        }
    }

    #[test]
    fn random_plans_round_trip_byte_identical(
        points in prop::collection::vec(any::<[f64; 3]>(), 1..12),
        vectors in prop::collection::vec(
            (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL, -1.0..1.0f64, 0.01..1.0f64), 1..6),
        widths in prop::collection::vec(0.4..=1.25f64, 1..6),
    ) {
        let finite: Vec<[f64; 3]> = points
            .iter()
            .map(|p| p.map(|v| if v.is_finite() { v } else { -0.0 }))
            .collect();
        let mut plan = full_plan();
        plan.landmarks = finite
            .iter()
            .enumerate()
            .map(|(i, p)| Landmark { name: format!("l{i}"), point_mm: *p })
            .collect();
        plan.structures[0].points_mm = finite.clone();
        for (i, (v, w)) in vectors.iter().zip(widths.iter().cycle()).enumerate() {
            let n = unit([v.0.clamp(-1e6, 1e6), v.1, v.2]);
            plan.planes.push(CuttingPlane {
                name: format!("random {i}"),
                point_mm: finite[i % finite.len()],
                normal: n,
                blade_thickness_mm: *w,
                resected_side: ResectedSide::None,
            });
            plan.guides[0].parameters.insert(format!("p{i}_mm"), v.0);
        }
        let text = plan.to_json();
        let back = Plan::from_json(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.to_json(), text);
    }
}

fn volume(hu: Vec<i16>, geometry: GridGeometry) -> Volume {
    let dims = geometry.dims;
    Volume {
        geometry,
        hu,
        series: SeriesInfo {
            series_uid: "2.25.42".into(),
            series_number: Some(3),
            description: String::new(),
            modality: "CT".into(),
            scanner: String::new(),
            kernel: String::new(),
            slices: dims[2],
            matrix: [dims[0] as u32, dims[1] as u32],
            pixel_spacing_mm: [0.5, 0.5],
            slice_spacing_mm: Some(1.0),
            thickness_mm: vec![1.0],
            transfer_syntaxes: vec![],
            tilt_deg: 0.0,
            resampled: false,
            warnings: vec![],
            not_hounsfield: None,
            error: None,
        },
    }
}

#[test]
fn ct_hash_identifies_the_volume() {
    let geometry = GridGeometry::axis_aligned([40, 36, 24], [0.5, 0.5, 1.0], [-10.0, -9.0, -12.0]);
    let hu = Phantom::sphere([0.0, 0.0, 0.0], 6.0, 1200.0)
        .with_noise(20.0, 5)
        .sample(&geometry)
        .expect("sample phantom");
    let v = volume(hu.clone(), geometry.clone());
    let h = ct_sha256(&v);
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        ct_sha256(&volume(hu.clone(), geometry.clone())),
        h,
        "same volume, same hash"
    );

    // The hash is SHA-256 over the documented layout (checked against an independent byte layout).
    let mut bytes = b"guidesmith-volume-v1".to_vec();
    for d in geometry.dims {
        bytes.extend_from_slice(&(d as u64).to_le_bytes());
    }
    for x in geometry
        .spacing_mm
        .iter()
        .chain(&geometry.origin_mm)
        .chain(geometry.axes.iter().flatten())
    {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    for s in &hu {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    assert_eq!(guidesmith::plan::sha256_hex(&bytes), h);

    let reference = CtReference::from_volume(&v, "ct");
    assert_eq!(reference.volume_sha256, h);
    assert_eq!(reference.series_uid, "2.25.42");
    reference.verify(&v).expect("same volume verifies");

    let mut one_voxel = hu.clone();
    one_voxel[geometry.index(20, 18, 12)] += 1;
    let changed = volume(one_voxel, geometry.clone());
    assert_ne!(ct_sha256(&changed), h);
    let e = reference
        .verify(&changed)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with("the CT differs from the one the plan was made on: hash "),
        "{e}"
    );
    assert!(
        e.contains(&h[..12]) && e.contains("dims same") && e.contains("so the HU values differ"),
        "{e}"
    );

    let mut spaced = geometry.clone();
    spaced.spacing_mm[2] = 1.25;
    let e = reference
        .verify(&volume(hu, spaced))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("spacing differ (0.5 x 0.5 x 1 mm expected, 0.5 x 0.5 x 1.25 mm found)"),
        "{e}"
    );

    // The reference is a valid part of a plan.
    let mut plan = full_plan();
    plan.ct = Some(reference);
    Plan::from_json(&plan.to_json()).expect("plan with a computed CT reference");
}

#[test]
fn a_version_1_plan_is_read_with_the_printer_build_used_by_default() {
    let v2 = full_plan();
    let v1 = edited_json(|v| {
        v["schema_version"] = json!(1);
        v["ct"]
            .as_object_mut()
            .expect("ct")
            .remove("rescale_intercept_override_hu");
        for g in v["guides"].as_array_mut().expect("guides") {
            g.as_object_mut().expect("guide").remove("printer");
        }
    });
    let read = Plan::from_json(&v1).expect("a version 1 plan is upgraded");
    assert_eq!(read.schema_version, SCHEMA_VERSION);
    assert!(read.guides.iter().all(|g| g.printer == guidesmith::plan::V1_PRINTER));
    let mut expected = v2.clone();
    if let Some(ct) = &mut expected.ct {
        ct.rescale_intercept_override_hu = None;
    }
    for g in &mut expected.guides {
        g.printer = guidesmith::plan::V1_PRINTER.to_string();
    }
    assert_eq!(read, expected);
    // The printer is part of the plan's identity.
    let mut fdm = read.clone();
    fdm.guides[0].printer = "fdm".into();
    assert_ne!(fdm.sha256(), read.sha256());
}

#[test]
fn the_schema_and_the_validator_take_the_guides_instrument_ranges() {
    use guidesmith::template::{BLADE_THICKNESS_RANGE_MM, DRILL_DIAMETER_RANGE_MM};
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).expect("schema");
    let blade = &schema["$defs"]["CuttingPlane"]["properties"]["blade_thickness_mm"];
    assert_eq!(blade["minimum"], json!(*BLADE_THICKNESS_RANGE_MM.start()));
    assert_eq!(blade["maximum"], json!(*BLADE_THICKNESS_RANGE_MM.end()));
    let drill = &schema["$defs"]["DrillTrajectory"]["properties"]["diameter_mm"];
    assert_eq!(drill["minimum"], json!(*DRILL_DIAMETER_RANGE_MM.start()));
    assert_eq!(drill["maximum"], json!(*DRILL_DIAMETER_RANGE_MM.end()));
    // A blade the guide's slot refuses is refused by the plan too (it was accepted up to 3 mm before).
    let two_mm = edited_json(|v| v["planes"][0]["blade_thickness_mm"] = json!(2.0));
    let e = Plan::from_json(&two_mm).expect_err("2 mm blade");
    assert!(
        e.to_string()
            .contains("planes[0].blade_thickness_mm: 2 is outside 0.4..=1.25 mm"),
        "{e}"
    );
}

#[test]
fn committed_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = json_schema();
    if committed != current && std::env::var_os("GUIDESMITH_BLESS").is_some() {
        guidesmith::atomic::write_atomic(&path, |w| w.write_all(current.as_bytes()))
            .expect("write docs/plan.schema.json");
        return;
    }
    assert!(
        committed == current,
        "docs/plan.schema.json is out of date: run `GUIDESMITH_BLESS=1 cargo test --test plan_document`"
    );
    // The schema documents the constraints a reader relies on.
    let schema: serde_json::Value = serde_json::from_str(&current).expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], json!(false));
    let required = schema["required"].as_array().expect("required list");
    assert_eq!(required.len(), 10, "every plan field is required");
    let plane = &schema["$defs"]["CuttingPlane"];
    assert_eq!(plane["properties"]["blade_thickness_mm"]["maximum"], json!(1.25));
    let drill = &schema["$defs"]["DrillTrajectory"];
    assert!(drill["required"]
        .as_array()
        .is_some_and(|r| r.contains(&json!("screw_system"))));
    assert_eq!(
        drill["properties"]["screw_system"]["type"],
        json!(["string", "null"]),
        "required but nullable"
    );
    let hu = &schema["$defs"]["HuRange"]["properties"];
    assert!(hu.get("min_hu").is_some() && hu.get("max_hu").is_some(), "{schema}");
}

#[test]
fn documented_example_is_a_valid_plan() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PLAN_FORMAT.md");
    let doc = std::fs::read_to_string(path).expect("docs/PLAN_FORMAT.md");
    let start = doc.find("```json\n").expect("an example block") + "```json\n".len();
    let end = start + doc[start..].find("```").expect("end of the example block");
    let plan = Plan::from_json(&doc[start..end]).expect("the documented example reads");
    assert_eq!(plan.case_id.as_str(), "case-0007");
    assert_eq!(plan.guides[0].planes, ["Le Fort I"]);
}
