//! Guides built on the synthetic jaw: every check passes, the result is deterministic, and random plans give either
//! a guide that passes every check or a clear error, never a broken or off-plan solid.

mod common;

use std::collections::BTreeMap;

use guidesmith::grid::GridGeometry;
use guidesmith::guide::build::{build_guide, ChannelSpec, GuideRequest, SlotSpec, DEFAULT_GRID_MM};
use guidesmith::guide::check::{check_guide, CHANNEL_ANGLE_TOL_DEG, CHANNEL_OFFSET_TOL_MM, SLOT_OFFSET_TOL_MM};
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::Mesh;
use guidesmith::synth::Phantom;
use guidesmith::template::{builtin_printers, builtin_template};
use proptest::prelude::*;
use std::sync::OnceLock;

fn jaw_bone() -> &'static Mesh {
    static BONE: OnceLock<Mesh> = OnceLock::new();
    BONE.get_or_init(|| {
        common::phantom_bone(
            &Phantom::jaw(),
            GridGeometry::axis_aligned([170, 140, 40], [0.5, 0.5, 0.5], [-42.5, -38.0, -10.0]),
        )
    })
}

fn front_y(bone: &Mesh) -> f64 {
    bone.bounding_box().expect("bone").min_mm[1]
}

fn cutting_request(bone: &Mesh, x_r: f64, x_l: f64, tilt: f64) -> GuideRequest {
    let printers = builtin_printers().expect("printers");
    let front = front_y(bone);
    let n = |t: f64| [t.to_radians().cos(), t.to_radians().sin(), 0.0];
    GuideRequest {
        name: "symphysis-cut".into(),
        params: builtin_template("cutting_guide")
            .expect("template")
            .resolve(&BTreeMap::new(), printers.get("sla").expect("sla"))
            .expect("params"),
        slots: vec![
            SlotSpec {
                name: "R".into(),
                point_mm: [x_r, front, 0.0],
                normal: n(tilt),
                blade_thickness_mm: 0.6,
            },
            SlotSpec {
                name: "L".into(),
                point_mm: [x_l, front, 0.0],
                normal: n(-tilt),
                blade_thickness_mm: 0.6,
            },
        ],
        channels: vec![],
        seating_direction: [0.0, 1.0, 0.0],
        footprint_mm: vec![
            [-20.0, front, -5.0],
            [20.0, front, -5.0],
            [20.0, front, 5.0],
            [-20.0, front, 5.0],
        ],
        grid_mm: DEFAULT_GRID_MM,
    }
}

fn drill_request(bone: &Mesh, query: &BoneQuery) -> GuideRequest {
    let printers = builtin_printers().expect("printers");
    let side = bone.bounding_box().expect("bone").max_mm[0];
    GuideRequest {
        name: "left-body-drill".into(),
        params: builtin_template("drill_guide")
            .expect("template")
            .resolve(&BTreeMap::new(), printers.get("sla").expect("sla"))
            .expect("params"),
        slots: vec![],
        channels: (0..3)
            .map(|k| {
                let y = -2.0 + 7.0 * k as f64;
                let hits = query
                    .crossings([side + 5.0, y, 0.0], [-1.0, 0.0, 0.0], 0.0, 50.0)
                    .expect("ray");
                ChannelSpec {
                    name: format!("D{}", k + 1),
                    entry_mm: hits.first().expect("the drill line meets the bone").point_mm,
                    direction: [-1.0, 0.0, 0.0],
                    drill_diameter_mm: 1.5,
                }
            })
            .collect(),
        seating_direction: [-1.0, 0.0, 0.0],
        footprint_mm: vec![
            [side, -8.0, -5.0],
            [side, 18.0, -5.0],
            [side, 18.0, 5.0],
            [side, -8.0, 5.0],
        ],
        grid_mm: DEFAULT_GRID_MM,
    }
}

#[test]
fn cutting_and_drill_guides_on_the_jaw_pass_every_check_and_are_deterministic() {
    let bone = jaw_bone();
    let query = BoneQuery::new(bone).expect("query");
    for request in [cutting_request(bone, -12.0, 12.0, 0.0), drill_request(bone, &query)] {
        let built = build_guide(bone, &request).expect("guide");
        let check = check_guide(&built, &query);
        assert!(check.passed, "{}: {:?}", request.name, check.failures);
        assert_eq!(check.mesh.components, 1);
        assert!(check.mesh.is_valid());
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
        assert_eq!(check.blocked_on_removal, 0);
        assert!(check.walls.thinnest_mm >= 2.0 - 1e-3);
        // Same inputs, same solid, to the bit.
        let again = build_guide(bone, &request).expect("guide");
        assert_eq!(again.mesh, built.mesh);
    }
}

#[test]
fn a_plane_outside_the_footprint_is_a_clear_error() {
    let bone = jaw_bone();
    let err = build_guide(bone, &cutting_request(bone, -30.0, 12.0, 0.0)).expect_err("plane beside the footprint");
    assert!(
        err.to_string().contains("does not cross the bone inside the footprint"),
        "{err}"
    );
}

fn cases() -> u32 {
    std::env::var("GUIDESMITH_GUIDE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    /// Random planes, tilts, seating directions and parameters: a guide that passes every check, or a clear error.
    #[test]
    fn random_cutting_guides_pass_their_checks_or_are_refused(
        x_r in -16.0f64..-8.0,
        x_l in 8.0f64..16.0,
        tilt in -15.0f64..15.0,
        seat_x in -0.3f64..0.3,
        seat_z in -0.3f64..0.3,
        pad in 3.0f64..6.0,
        depth in 10.0f64..15.0,
        blade in 0.4f64..1.25,
    ) {
        let bone = jaw_bone();
        let query = BoneQuery::new(bone).expect("query");
        let mut request = cutting_request(bone, x_r, x_l, tilt);
        request.seating_direction = [seat_x, 1.0, seat_z];
        for s in &mut request.slots { s.blade_thickness_mm = blade; }
        let template = builtin_template("cutting_guide").expect("template");
        let printers = builtin_printers().expect("printers");
        let overrides = BTreeMap::from([("pad_thickness_mm".to_string(), pad), ("slot_depth_mm".to_string(), depth)]);
        request.params = template.resolve(&overrides, printers.get("sla").expect("sla")).expect("params");
        // A guide is either refused with a message (build error or failed check: no file is ever written for
        // it) or it is valid and on the plan; plausible plans in these ranges must build.
        let built = build_guide(bone, &request);
        prop_assert!(built.is_ok(), "{}", built.as_ref().err().map(|e| e.to_string()).unwrap_or_default());
        let built = built.expect("checked above");
        let check = check_guide(&built, &query);
        if check.passed {
            prop_assert!(check.mesh.is_valid() && check.mesh.components == 1);
            for s in &check.slots {
                prop_assert!(s.offset_mm.abs() <= SLOT_OFFSET_TOL_MM && s.angle_deg <= 0.05);
            }
            prop_assert!(check.walls.thinnest_mm >= request.params.min_wall_mm - 1e-3);
            prop_assert!(check.contact.inside_bone == 0 && check.blocked_on_removal == 0);
        } else {
            // Refused: the report says what and where (no file is written for it). Known: boolmesh 0.2 sometimes
            // leaves a self-intersecting pair where a tilted slot meets the pad's outline.
            prop_assert!(check.failures.iter().all(|f| !f.is_empty()));
            eprintln!("refused: {:?}", check.failures);
        }
    }
}
