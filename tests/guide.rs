//! The demo case's guides (`case::demo`, the plan `guidesmith demo` writes) built through the case layer: every check
//! passes, the result is deterministic, plan problems are refused with their finding code and place, and random
//! variations of the cutting guide give a guide that is valid and on the plan, or a refusal for a plan problem, or a
//! failed check that is true of the mesh.

mod common;

use std::sync::OnceLock;

use common::{verify_guide, Verified};
use guidesmith::case::demo::{demo_in_memory, demo_plan_verified};
use guidesmith::case::{build_guides, build_guides_reusing, GuideOutcome};
use guidesmith::finding::FindingCode;
use guidesmith::guide::check::{CHANNEL_ANGLE_TOL_DEG, CHANNEL_OFFSET_TOL_MM};
use guidesmith::mesh::Mesh;
use guidesmith::plan::Plan;
use guidesmith::progress::NoProgress;
use proptest::prelude::*;

/// The demo's bone and plan, made as `guidesmith demo` makes them (the CT sampled in memory instead of written).
fn demo() -> &'static (Mesh, Plan) {
    static DEMO: OnceLock<(Mesh, Plan)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let demo = demo_in_memory(&NoProgress).expect("demo case");
        (demo.bone.mesh, demo.plan)
    })
}

#[test]
fn demo_guides_pass_every_check_on_the_plan_and_are_deterministic() {
    let (bone, plan) = demo();
    plan.validate().expect("the demo plan is valid");
    let result = build_guides(plan, bone, None, &NoProgress).expect("build");
    assert_eq!(result.guides.len(), 2);
    assert!(result.all_passed(), "{:?}", result.findings());
    for planned in &result.guides {
        assert_eq!(verify_guide(bone, planned), Ok(Verified::Passed));
        let (built, check) = planned.built().expect("built");
        for s in &check.slots {
            assert!(s.offset_mm.abs() < 1e-6 && s.angle_deg < 1e-6, "{s:?}");
            assert!(
                (s.width_mm - 0.8).abs() < 1e-6,
                "slot = blade 0.6 + 2 x 0.1 SLA clearance: {s:?}"
            );
        }
        for c in &check.channels {
            assert!(
                c.offset_mm < CHANNEL_OFFSET_TOL_MM && c.angle_deg < CHANNEL_ANGLE_TOL_DEG,
                "{c:?}"
            );
            assert!(c.min_radius_mm >= 0.5 * c.bore_diameter_mm - 1e-9);
        }
        assert!(check.contact.min_gap_mm >= 0.25 - 0.05 && check.contact.inside_bone == 0);
        assert!(check.contact.at_offset_fraction > 0.95, "{:?}", check.contact);
        assert_eq!(built.params.printer, "sla");
    }
    let (cutting, _) = result.guides[0].built().expect("built");
    assert_eq!(cutting.slots.len(), 2);
    // One fixation screw on each side of the resection, both in bone that remains (outside -12 < x < 12).
    assert_eq!(cutting.holes.len(), 2);
    let sides: Vec<f64> = cutting.holes.iter().map(|h| h.point_mm[0]).collect();
    assert!(
        sides.iter().any(|&x| x < -12.0) && sides.iter().any(|&x| x > 12.0),
        "holes at x = {sides:?}"
    );
    // Same inputs, same solids, to the bit.
    let again = build_guides(plan, bone, None, &NoProgress).expect("build");
    for (a, b) in result.guides.iter().zip(&again.guides) {
        assert_eq!(a.built().expect("a").0.mesh, b.built().expect("b").0.mesh);
    }
}

/// The meshes of a build's guides, in order (`None` for a refused guide).
fn meshes(result: &guidesmith::case::CaseGuides) -> Vec<Option<&Mesh>> {
    result.guides.iter().map(|g| g.built().map(|(b, _)| &b.mesh)).collect()
}

#[test]
fn a_guide_built_to_verify_its_proposal_is_reused_only_for_its_own_request_and_bone() {
    let (bone, _) = demo();
    let (plan, verified) = demo_plan_verified(bone, None, None).expect("demo plan");
    assert_eq!(
        verified.len(),
        1,
        "the demo's proposed drill guide passed when it was proposed"
    );
    assert_eq!(verified[0].name(), "left-body-drilling");
    let fresh = build_guides(&plan, bone, None, &NoProgress).expect("build");
    let reused = build_guides_reusing(&plan, bone, None, &verified, &NoProgress).expect("build");
    assert!(reused.all_passed(), "{:?}", reused.findings());
    assert_eq!(meshes(&reused), meshes(&fresh));
    assert_eq!(meshes(&reused)[1], Some(&verified[0].guide().mesh));
    for (a, b) in reused.guides.iter().zip(&fresh.guides) {
        let (a, b) = (a.built().expect("built").1, b.built().expect("built").1);
        assert_eq!(serde_json::to_value(a).ok(), serde_json::to_value(b).ok());
    }

    // A footprint edited after the proposal: the guide is built anew from the plan.
    let mut edited = plan.clone();
    edited.guides[1].footprint.outline_mm[0][2] += 0.5;
    let fresh = build_guides(&edited, bone, None, &NoProgress).expect("build");
    let reused = build_guides_reusing(&edited, bone, None, &verified, &NoProgress).expect("build");
    assert_eq!(meshes(&reused), meshes(&fresh));
    assert_ne!(meshes(&reused)[1], Some(&verified[0].guide().mesh));

    // The same plan on another bone (the bone moved 0.2 mm along x): built anew as well.
    let mut moved = bone.clone();
    for p in &mut moved.positions {
        p[0] += 0.2;
    }
    let fresh = build_guides(&plan, &moved, None, &NoProgress).expect("build");
    let reused = build_guides_reusing(&plan, &moved, None, &verified, &NoProgress).expect("build");
    assert_eq!(meshes(&reused), meshes(&fresh));
    assert_ne!(meshes(&reused)[1], Some(&verified[0].guide().mesh));
}

#[test]
fn plan_problems_are_refused_with_their_code_and_place() {
    let (bone, plan) = demo();
    // A plane beside the cutting guide's footprint.
    let mut beside = plan.clone();
    beside.planes[0].point_mm[0] = -30.0;
    let result = build_guides(&beside, bone, None, &NoProgress).expect("build");
    let GuideOutcome::Refused(f) = &result.guides[0].outcome else {
        panic!("refused: {:?}", result.guides[0].findings())
    };
    assert_eq!(f.code, FindingCode::PlaneOutsideFootprint);
    assert_eq!(f.element, "guides/symphysis-cutting");
    assert_eq!(f.place_mm, Some(beside.planes[0].point_mm));
    assert!(f.message.contains("resection-right"), "{f}");
    // The drill guide is still built: each guide has its own outcome.
    assert_eq!(verify_guide(bone, &result.guides[1]), Ok(Verified::Passed));

    // A 4 mm high footprint leaves no room for a 2.2 mm hole with 2 mm of wall to the outline on both sides.
    let mut crowded = plan.clone();
    for p in &mut crowded.guides[0].footprint.outline_mm {
        p[2] = p[2].signum() * 2.0;
    }
    let result = build_guides(&crowded, bone, None, &NoProgress).expect("build");
    assert_eq!(
        verify_guide(bone, &result.guides[0]),
        Ok(Verified::Refused(FindingCode::NoRoomForFixationHoles))
    );

    // A printer the profiles do not have, given as the print lab's override.
    let result = build_guides(plan, bone, Some("laser-cutter"), &NoProgress).expect("build");
    for g in &result.guides {
        assert_eq!(
            verify_guide(bone, g),
            Ok(Verified::Refused(FindingCode::UnknownPrinter))
        );
    }
}

#[test]
fn the_printer_override_changes_the_offset_and_the_slot() {
    let (bone, plan) = demo();
    let result = build_guides(plan, bone, Some("fdm"), &NoProgress).expect("build");
    let (built, check) = result.guides[0].built().expect("built");
    assert_eq!(built.params.printer, "fdm");
    assert_eq!(result.guides[0].printer_in_plan, "sla");
    assert_eq!(built.params.tolerance.bone_offset_mm, 0.4);
    // FDM clearance 0.2 mm per side: a 0.6 mm blade gets a 1.0 mm slot.
    assert!(check.slots.iter().all(|s| (s.expected_width_mm - 1.0).abs() < 1e-12));
}

proptest! {
    #![proptest_config(common::proptest_config(12))]

    /// The demo's cutting guide with its planes moved and tilted, its seating direction and parameters changed: a
    /// valid guide on the plan, a refusal for a plan problem, or a failed check that the mesh confirms.
    #[test]
    fn random_demo_cutting_guides_are_valid_or_refused_with_a_code(
        x_r in -16.0f64..-8.0,
        x_l in 8.0f64..16.0,
        tilt in -15.0f64..15.0,
        seat_x in -0.3f64..0.3,
        seat_z in -0.3f64..0.3,
        pad in 3.0f64..6.0,
        depth in 10.0f64..15.0,
        blade in 0.4f64..1.25,
    ) {
        let (bone, plan) = demo();
        let mut plan = plan.clone();
        plan.guides.truncate(1);
        let n = |t: f64| [t.to_radians().cos(), t.to_radians().sin(), 0.0];
        for (p, (x, t)) in plan.planes.iter_mut().zip([(x_r, tilt), (x_l, -tilt)]) {
            p.point_mm[0] = x;
            p.normal = n(t);
            p.blade_thickness_mm = blade;
        }
        let seat = [seat_x, 1.0, seat_z];
        let len = (seat[0] * seat[0] + 1.0 + seat[2] * seat[2]).sqrt();
        plan.guides[0].seating_direction = seat.map(|c| c / len);
        plan.guides[0].parameters.insert("pad_thickness_mm".into(), pad);
        plan.guides[0].parameters.insert("slot_depth_mm".into(), depth);
        prop_assert!(plan.validate().is_ok());
        let result = build_guides(&plan, bone, None, &NoProgress).expect("build");
        let verdict = verify_guide(bone, &result.guides[0]);
        prop_assert!(verdict.is_ok(), "{}", verdict.err().unwrap_or_default());
    }
}

#[test]
fn a_label_is_embossed_where_the_pad_has_room_and_refused_with_its_place_where_it_has_none() {
    use guidesmith::export::Release;
    let (bone, plan) = demo();
    // The demo's drill guide carries the automatic label: case ID, G2 and its side (it lies on the patient's left,
    // +x), DRAFT (nobody approved the demo).
    let result = build_guides(plan, bone, None, &NoProgress).expect("build");
    let (drill, check) = result.guides[1].built().expect("built");
    let label = check.label.as_ref().expect("a label check");
    assert!(label.ok, "{label:?}");
    assert_eq!(label.lines.join(" "), "DEMO-JAW G2 L DRAFT", "{label:?}");
    assert_eq!(label.on, "pad");
    assert!(label.relief_mm >= 0.5 && label.relief_mm <= 0.6 + 1e-6, "{label:?}");
    assert_eq!(label.top_points_found, label.top_points);
    // The letters add their volume (at most the block's area times their relief) and nothing else changes.
    let mut bare = plan.clone();
    bare.guides[1].label = None;
    let without = build_guides(&bare, bone, None, &NoProgress).expect("build");
    let (plain, plain_check) = without.guides[1].built().expect("built");
    assert!(plain_check.label.is_none());
    let placed = drill.label.as_ref().expect("placed");
    let added = drill.mesh.signed_volume_mm3() - plain.mesh.signed_volume_mm3();
    assert!(
        added > 0.05 * placed.width_mm * placed.height_mm * 0.6 && added < placed.width_mm * placed.height_mm * 0.6,
        "{added} mm^3 for a {} x {} mm label",
        placed.width_mm,
        placed.height_mm
    );
    assert!((check.walls.thinnest_mm - plain_check.walls.thinnest_mm).abs() < 1e-9);
    assert!((check.contact.min_gap_mm - plain_check.contact.min_gap_mm).abs() < 1e-9);

    // Released guides carry no DRAFT.
    let released = Release::Approved {
        surgeon: "Dr L. Surgeon".into(),
        at_utc: "2026-12-07T11:00:00Z".into(),
        design_sha256: "0".repeat(64),
    };
    let result = guidesmith::case::build_guides_for(plan, bone, None, &released, &NoProgress).expect("build");
    let label = result.guides[1].built().expect("built").1.label.clone().expect("label");
    assert!(label.ok && label.lines.join(" ") == "DEMO-JAW G2 L", "{label:?}");

    // Put by the engineer: near one end of the pad, then near the other, the label goes to the free place nearest
    // each (seen along the seating direction), and every check still passes.
    let outline = &plan.guides[1].footprint.outline_mm;
    let by_y = |pick: fn(f64, f64) -> bool| {
        *outline
            .iter()
            .reduce(|a, b| if pick(b[1], a[1]) { b } else { a })
            .expect("points")
    };
    let ends = [by_y(|a, b| a < b), by_y(|a, b| a > b)];
    let mut centres = Vec::new();
    for end in ends {
        let mut moved = plan.clone();
        if let Some(l) = moved.guides[1].label.as_mut() {
            l.near_mm = Some(end);
        }
        let result = build_guides(&moved, bone, None, &NoProgress).expect("build");
        let (_, check) = result.guides[1].built().expect("built");
        assert!(check.passed, "{:?}", check.findings);
        let label = check.label.as_ref().expect("a label");
        assert!(label.ok && label.on == "pad", "{label:?}");
        centres.push(label.centre_mm);
    }
    let dist = |a: [f64; 3], b: [f64; 3]| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
    // (The barrels take the pad's other end: the label stops short of them.)
    assert!(dist(centres[0], centres[1]) > 5.0, "{centres:?}");
    for (k, end) in ends.iter().enumerate() {
        assert!(
            dist(centres[k], *end) < dist(centres[1 - k], *end),
            "{centres:?} for {ends:?}"
        );
    }

    // The cutting guide's pad (10 mm tall, slot housings 8 mm above it) has no room: refused, with the code and place.
    let mut crowded = plan.clone();
    crowded.guides[0].label = plan.guides[1].label.clone();
    let result = build_guides(&crowded, bone, None, &NoProgress).expect("build");
    let GuideOutcome::Refused(finding) = &result.guides[0].outcome else {
        panic!(
            "the cutting guide's label fitted: {:?}",
            result.guides[0].built().map(|(_, c)| &c.label)
        );
    };
    assert_eq!(finding.code, FindingCode::LabelNoRoom);
    assert!(
        finding.place_mm.is_some() && finding.message.contains("no room for the label"),
        "{finding:?}"
    );
}
