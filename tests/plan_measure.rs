//! The plan evaluation (`guidesmith::plan::evaluate_with`) on a synthetic hollow bone made by the product chain
//! (phantom -> CT volume in memory -> threshold -> marching cubes): resection lengths, plane angles, bicortical
//! lengths and distances to a structure against analytic values from the phantom's parameters, and every finding
//! firing on a case made for it and on no other.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use guidesmith::bone::{self, SurfaceOptions};
use guidesmith::catalogue::Catalogue;
use guidesmith::finding::Severity;
use guidesmith::grid::GridGeometry;
use guidesmith::measure::{BoneQuery, DrillKind, DrillOptions};
use guidesmith::mesh::Mesh;
use guidesmith::plan::{
    evaluate_with, Between, BoneSource, CaseId, CuttingPlane, DrillTrajectory, EvaluateOptions, Evaluation, Footprint,
    GuideSpec, Plan, ResectedSide, Structure, StructureKind, SCHEMA_VERSION,
};
use guidesmith::progress::NoProgress;
use guidesmith::segment::{HuRange, SegmentRecipe};
use guidesmith::synth::{Phantom, Shape};
use guidesmith::volume::{SeriesInfo, Volume};
use nalgebra::{Rotation3, Unit, Vector3};

/// Required accuracy of lengths and distances against analytic truth, mm (the figure).
const LENGTH_TOLERANCE_MM: f64 = 0.01;
/// Required accuracy of angles, degrees (the figure).
const ANGLE_TOLERANCE_DEG: f64 = 0.01;
/// Relative accuracy of section areas and perimeters: a marching-cubes circle of 0.5 mm voxels is a polygon whose
/// area and length are within 0.1 % and 0.2 % of the circle's (measured in tests/measure.rs).
const SECTION_RELATIVE_TOLERANCE: f64 = 2e-3;

/// Bone and air HU: the threshold at 1 HU (iso 0.5 HU) is the exact midpoint, so the iso-surface of the phantom's
/// partial-volume ramp is the analytic surface.
const BONE_HU: f64 = 1001.0;
const AIR_HU: f64 = -1000.0;
const VOXEL_MM: f64 = 0.5;

/// The hollow bone: a cylinder of radius 8 mm, 40 mm long, around a tilted axis, with a marrow cavity of radius
/// 5 mm (air HU, so the cortex is 3 mm thick) ending 4 mm before each cap.
const CENTER: [f64; 3] = [3.2, -1.7, 0.9];
const OUTER_R_MM: f64 = 8.0;
const INNER_R_MM: f64 = 5.0;
const HALF_LENGTH_MM: f64 = 20.0;
const CAVITY_HALF_LENGTH_MM: f64 = 16.0;

/// Drill diameter used throughout, mm.
const DRILL_D_MM: f64 = 1.5;

/// A frame tilted off the patient axes, so nothing lines up with the voxel grid: the bone axis and two unit
/// vectors normal to it.
struct Frame {
    axis: [f64; 3],
    u: [f64; 3],
    v: [f64; 3],
}

fn frame() -> Frame {
    let rot = Rotation3::from_axis_angle(&Unit::new_normalize(Vector3::new(-0.3, 0.9, 0.2)), 23f64.to_radians())
        * Rotation3::from_axis_angle(&Vector3::x_axis(), 7f64.to_radians());
    let col = |i: usize| {
        let c = rot.matrix().column(i);
        [c[0], c[1], c[2]]
    };
    Frame {
        axis: col(2),
        u: col(0),
        v: col(1),
    }
}

/// `CENTER + s_axis * axis + s_u * u + s_v * v`.
fn point(f: &Frame, s_axis: f64, s_u: f64, s_v: f64) -> [f64; 3] {
    [0, 1, 2].map(|i| CENTER[i] + s_axis * f.axis[i] + s_u * f.u[i] + s_v * f.v[i])
}

/// `a * axis + b * u` (a direction).
fn dir(f: &Frame, a: f64, b: f64) -> [f64; 3] {
    [0, 1, 2].map(|i| a * f.axis[i] + b * f.u[i])
}

fn bone_mesh(f: &Frame) -> Mesh {
    let phantom = Phantom::new(AIR_HU)
        .with_edge_width(2.0 * VOXEL_MM)
        .with_layer(
            "bone",
            Shape::Cylinder {
                start_mm: point(f, -HALF_LENGTH_MM, 0.0, 0.0),
                end_mm: point(f, HALF_LENGTH_MM, 0.0, 0.0),
                radius_mm: OUTER_R_MM,
            },
            BONE_HU,
        )
        .with_layer(
            "marrow",
            Shape::Cylinder {
                start_mm: point(f, -CAVITY_HALF_LENGTH_MM, 0.0, 0.0),
                end_mm: point(f, CAVITY_HALF_LENGTH_MM, 0.0, 0.0),
                radius_mm: INNER_R_MM,
            },
            AIR_HU,
        );
    let reach = HALF_LENGTH_MM + OUTER_R_MM + 2.0;
    let lo = CENTER.map(|c| c - reach);
    let dims = [0, 1, 2].map(|_| (2.0 * reach / VOXEL_MM).ceil() as usize + 1);
    let geometry = GridGeometry::axis_aligned(dims, [VOXEL_MM; 3], lo);
    let hu = phantom.sample(&geometry).expect("sample the phantom");
    let volume = Volume {
        geometry,
        hu,
        series: SeriesInfo {
            description: "plan measure phantom".into(),
            modality: "CT".into(),
            ..SeriesInfo::default()
        },
    };
    let recipe = SegmentRecipe::new(HuRange::new(1, 3071).expect("range"));
    let model = bone::extract_bone(&volume, &recipe, &SurfaceOptions::default(), &NoProgress).expect("surface");
    assert!(model.report.is_valid(), "{}", model.report);
    model.mesh
}

/// Where the clean plan's elements sit along the axis, mm from the centre.
const CUT_A_S: f64 = -7.3;
const CUT_B_S: f64 = 5.9;
const DRILL_S: f64 = 10.5;
/// The off-axis drill's offset along v, mm.
const OFFSET_V_MM: f64 = 3.0;
/// The nerve runs parallel to the axis at this offset along -v (in the marrow cavity), with this radius, mm.
const NERVE_V_MM: f64 = -3.5;
const NERVE_R_MM: f64 = 0.4;
const NERVE_MARGIN_MM: f64 = 1.0;

fn cut(name: &str, point_mm: [f64; 3], normal: [f64; 3], side: ResectedSide) -> CuttingPlane {
    CuttingPlane {
        name: name.into(),
        point_mm,
        normal,
        blade_thickness_mm: 1.0,
        resected_side: side,
    }
}

/// A drill along `u` at axial position `s` and offset `v_mm`, planned 1 mm outside the bone and 1 mm past it.
fn across(f: &Frame, name: &str, s: f64, v_mm: f64, extra_mm: f64) -> DrillTrajectory {
    let half_chord = (OUTER_R_MM * OUTER_R_MM - v_mm * v_mm).sqrt();
    DrillTrajectory {
        name: name.into(),
        entry_mm: point(f, s, -(half_chord + 1.0), v_mm),
        direction: f.u,
        length_mm: 2.0 * half_chord + 2.0 + extra_mm,
        diameter_mm: DRILL_D_MM,
        screw_system: None,
    }
}

fn clean_plan(f: &Frame) -> Plan {
    Plan {
        reconstruction: None,
        schema_version: SCHEMA_VERSION,
        case_id: CaseId::new("TUBE").expect("case"),
        ct: None,
        bone: BoneSource {
            segmentation: None,
            models: vec![],
        },
        landmarks: vec![],
        structures: vec![Structure {
            name: "nerve".into(),
            kind: StructureKind::Nerve,
            points_mm: vec![point(f, -12.0, 0.0, NERVE_V_MM), point(f, 14.0, 0.0, NERVE_V_MM)],
            radius_mm: NERVE_R_MM,
            margin_mm: NERVE_MARGIN_MM,
        }],
        // A segmental resection: A removes its positive side, B its negative side, so the bone between goes.
        planes: vec![
            cut("A", point(f, CUT_A_S, 0.0, 0.0), f.axis, ResectedSide::Positive),
            cut("B", point(f, CUT_B_S, 0.0, 0.0), f.axis, ResectedSide::Negative),
        ],
        // A bicortical drill through the axis, and one 3 mm off it along +v (away from the nerve).
        drills: vec![
            across(f, "through", DRILL_S, 0.0, 0.0),
            across(f, "offset", -DRILL_S, OFFSET_V_MM, 0.0),
        ],
        guides: vec![GuideSpec {
            bone: Default::default(),
            name: "guide".into(),
            template: "cutting_guide".into(),
            printer: "sla".into(),
            parameters: BTreeMap::new(),
            planes: vec!["A".into(), "B".into()],
            drills: vec![],
            seating_direction: f.u,
            footprint: Footprint {
                outline_mm: vec![
                    point(f, -10.0, -8.0, -4.0),
                    point(f, 10.0, -8.0, -4.0),
                    point(f, 10.0, -8.0, 4.0),
                ],
            },
            label: None,
        }],
        approvals: vec![],
    }
}

fn options() -> EvaluateOptions {
    EvaluateOptions {
        // The marrow cavity is 10 mm across; join the cortices across it.
        drill: DrillOptions {
            lead_in_mm: 2.0,
            marrow_gap_mm: 15.0,
        },
        ..EvaluateOptions::default()
    }
}

fn evaluate(plan: &Plan, query: &BoneQuery) -> Evaluation {
    plan.validate().expect("the plan is valid");
    evaluate_with(plan, query, Catalogue::builtin(), &options()).expect("evaluation")
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: {got} vs {want} (tolerance {tol})");
}

#[test]
fn measurements_match_the_phantom() {
    let f = frame();
    let query = BoneQuery::new(&bone_mesh(&f)).expect("query");
    let e = evaluate(&clean_plan(&f), &query);
    assert!(e.findings.is_empty(), "a clean plan has no finding: {:#?}", e.findings);

    // Sections: an annulus, outer loop counter-clockwise and the marrow a hole.
    let (area, perimeter) = (
        PI * (OUTER_R_MM * OUTER_R_MM - INNER_R_MM * INNER_R_MM),
        2.0 * PI * (OUTER_R_MM + INNER_R_MM),
    );
    for p in &e.planes {
        assert!(p.cuts_bone && p.loop_count == 2 && p.open_loops == 0, "{p:?}");
        assert!(p.loops[0].signed_area_mm2 > 0.0 && p.loops[1].signed_area_mm2 < 0.0);
        close(p.area_mm2 / area, 1.0, SECTION_RELATIVE_TOLERANCE, "annulus area");
        close(
            p.perimeter_mm / perimeter,
            1.0,
            SECTION_RELATIVE_TOLERANCE,
            "annulus perimeter",
        );
        eprintln!(
            "plane {}: area {:.4} mm^2 (truth {area:.4}), perimeter {:.4} mm (truth {perimeter:.4})",
            p.name, p.area_mm2, p.perimeter_mm
        );
    }
    let towards = e.planes[0].resected_direction.expect("A removes its positive side");
    assert!((0..3).all(|i| (towards[i] - f.axis[i]).abs() < 1e-12), "{towards:?}");

    // Resection length: the distance between the cuts along the axis.
    let pair = &e.plane_pairs[0];
    assert_eq!(pair.between, Between::Resected);
    let resection = pair.centroid_distance_mm.expect("both planes cut");
    close(resection, CUT_B_S - CUT_A_S, LENGTH_TOLERANCE_MM, "resection length");
    close(pair.angle_deg, 0.0, ANGLE_TOLERANCE_DEG, "parallel cuts");
    eprintln!("resection length {resection:.4} mm (truth {:.4})", CUT_B_S - CUT_A_S);

    // Drills: bicortical lengths are chords of the outer circle; each cortex a chord difference.
    let chord = |r: f64, off: f64| 2.0 * (r * r - off * off).sqrt();
    for (d, off) in e.drills.iter().zip([0.0, OFFSET_V_MM]) {
        assert_eq!(d.kind, DrillKind::Bicortical, "{}", d.name);
        let bicortical = d.bicortical_length_mm.expect("bicortical length");
        close(
            bicortical,
            chord(OUTER_R_MM, off),
            LENGTH_TOLERANCE_MM,
            "bicortical length",
        );
        let cortex = 0.5 * (chord(OUTER_R_MM, off) - chord(INNER_R_MM, off));
        assert_eq!(d.intervals.len(), 2);
        for iv in &d.intervals {
            close(iv.length_mm, cortex, LENGTH_TOLERANCE_MM, "cortex");
        }
        close(
            d.tip_past_exit_mm.expect("tip past"),
            1.0,
            LENGTH_TOLERANCE_MM,
            "tip past the far cortex",
        );
        eprintln!(
            "drill {}: bicortical {bicortical:.4} mm (truth {:.4}), cortices {:.4} / {:.4} mm (truth {cortex:.4})",
            d.name,
            chord(OUTER_R_MM, off),
            d.intervals[0].length_mm,
            d.intervals[1].length_mm
        );
    }

    // Distances to the nerve (a line parallel to the axis at v = -3.5): the drill axes cross its line at right
    // angles, so the axis distance is the offset along v.
    for (d, off) in e.drills.iter().zip([0.0, OFFSET_V_MM]) {
        let c = &d.clearances[0];
        let distance = off - NERVE_V_MM;
        close(
            c.axis_distance_mm,
            distance,
            LENGTH_TOLERANCE_MM,
            "axis distance to the nerve",
        );
        close(
            c.clearance_mm,
            distance - 0.5 * DRILL_D_MM - NERVE_R_MM,
            LENGTH_TOLERANCE_MM,
            "clearance",
        );
        assert!(!c.within_margin);
    }
    // The two drills: both cross the axis' plane spanned by u, 2 * DRILL_S apart along the axis.
    let dp = &e.drill_pairs[0];
    let along = 2.0 * DRILL_S;
    close(
        dp.axis_distance_mm,
        (along * along + OFFSET_V_MM * OFFSET_V_MM).sqrt(),
        LENGTH_TOLERANCE_MM,
        "drills",
    );
    assert!(!dp.collide);

    // Oblique cuts, tilted 20 degrees either way about v: the angle between them is 40 degrees, and the
    // centroids of the two ellipses stay on the axis at the same points.
    let tilt = 20f64.to_radians();
    let mut oblique = clean_plan(&f);
    oblique.planes[0].normal = dir(&f, tilt.cos(), tilt.sin());
    oblique.planes[1].normal = dir(&f, tilt.cos(), -tilt.sin());
    let e = evaluate(&oblique, &query);
    let pair = &e.plane_pairs[0];
    close(
        pair.angle_deg,
        40.0,
        ANGLE_TOLERANCE_DEG,
        "angle between the oblique cuts",
    );
    close(
        pair.centroid_distance_mm.expect("both cut"),
        CUT_B_S - CUT_A_S,
        LENGTH_TOLERANCE_MM,
        "resection length between oblique cuts",
    );
    close(
        e.planes[0].area_mm2 / (area / tilt.cos()),
        1.0,
        SECTION_RELATIVE_TOLERANCE,
        "ellipse area",
    );
    eprintln!("oblique cuts: angle {:.5} deg (truth 40)", pair.angle_deg);

    // Keeping the bone between the cuts (a graft) makes the same distance a segment length.
    let mut kept = clean_plan(&f);
    kept.planes[0].resected_side = ResectedSide::Negative;
    kept.planes[1].resected_side = ResectedSide::Positive;
    assert_eq!(evaluate(&kept, &query).plane_pairs[0].between, Between::Kept);
}

/// The findings of `plan` as `(code, element)`.
fn findings(plan: &Plan, query: &BoneQuery) -> Vec<(String, String, Severity)> {
    evaluate(plan, query)
        .findings
        .into_iter()
        .map(|f| (f.code.to_string(), f.element, f.severity))
        .collect()
}

#[test]
fn every_finding_fires_on_its_case_only() {
    let f = frame();
    let query = BoneQuery::new(&bone_mesh(&f)).expect("query");
    assert!(findings(&clean_plan(&f), &query).is_empty());
    let err = Severity::Error;
    let warn = Severity::Warning;

    // Each case: the clean plan with one change, and the one finding it must give.
    type Change = Box<dyn Fn(&mut Plan, &Frame)>;
    let cases: Vec<(&str, Change, &str, Severity)> = vec![
        (
            "plane_misses_bone",
            Box::new(|p, f| {
                p.planes.push(cut(
                    "beyond",
                    point(f, HALF_LENGTH_MM + 1.0, 0.0, 0.0),
                    f.axis,
                    ResectedSide::None,
                ))
            }),
            "planes/beyond",
            err,
        ),
        (
            "drill_misses_bone",
            Box::new(|p, f| {
                let mut d = across(f, "beside", DRILL_S, 0.0, 0.0);
                d.entry_mm = point(f, DRILL_S, -10.0, OUTER_R_MM + 1.0);
                p.drills.push(d);
            }),
            "drills/beside",
            err,
        ),
        (
            "drill_starts_in_bone",
            Box::new(|p, f| {
                let mut d = across(f, "deep", DRILL_S, 0.0, 0.0);
                d.entry_mm = point(f, 13.0, -(OUTER_R_MM - 2.5), 0.0);
                d.length_mm = 5.0;
                p.drills.push(d);
            }),
            "drills/deep",
            err,
        ),
        (
            // 1.5 mm from the nerve's centre line on the same side: clearance 1.5 - 0.75 - 0.4 = 0.35 < 1 mm.
            "drill_within_margin",
            Box::new(|p, f| p.drills.push(across(f, "near-nerve", 0.0, NERVE_V_MM + 1.5, 0.0))),
            "drills/near-nerve",
            err,
        ),
        (
            // Parallel to "through", 1 mm away: the 1.5 mm holes overlap.
            "drills_collide",
            Box::new(|p, f| p.drills.push(across(f, "twin", DRILL_S + 1.0, 0.0, 0.0))),
            "drills/through",
            err,
        ),
        (
            // Along u through the cortex, 0.6 mm from plane A: within half the blade plus the drill radius.
            "drill_crosses_plane",
            Box::new(|p, f| p.drills.push(across(f, "at-cut", CUT_A_S + 0.6, 6.0, 0.0))),
            "drills/at-cut",
            err,
        ),
        (
            "unknown_template",
            Box::new(|p, _| p.guides[0].template = "no_such_template".into()),
            "guides/guide",
            err,
        ),
        (
            "unknown_printer",
            Box::new(|p, _| p.guides[0].printer = "no_such_printer".into()),
            "guides/guide",
            err,
        ),
        (
            // A slot deeper than the template allows.
            "template_parameter_invalid",
            Box::new(|p, _| {
                p.guides[0].parameters.insert("slot_depth_mm".into(), 40.0);
            }),
            "guides/guide",
            err,
        ),
        (
            "drill_overshoots",
            Box::new(|p, _| p.drills[0].length_mm += 3.0),
            "drills/through",
            warn,
        ),
        (
            // Entering 65 degrees off the surface normal.
            "drill_oblique_entry",
            Box::new(|p, f| {
                let a = 65f64.to_radians();
                let d = [0, 1, 2].map(|i| a.sin() * f.v[i] + a.cos() * f.u[i]);
                let entry = point(f, -1.0, -OUTER_R_MM, 0.0);
                p.drills.push(DrillTrajectory {
                    name: "oblique".into(),
                    entry_mm: [0, 1, 2].map(|i| entry[i] - 0.5 * d[i]),
                    direction: d,
                    length_mm: 4.0,
                    diameter_mm: DRILL_D_MM,
                    screw_system: None,
                });
            }),
            "drills/oblique",
            warn,
        ),
        (
            "drill_diameter_differs",
            // System 2.4 takes a 1.8 mm pilot drill.
            Box::new(|p, _| p.drills[0].screw_system = Some("2.4".into())),
            "drills/through",
            warn,
        ),
        (
            // System 1.5 stocks screws up to 12 mm; the bone is 16 mm across.
            "no_stock_screw",
            Box::new(|p, _| {
                p.drills[0].screw_system = Some("1.5".into());
                p.drills[0].diameter_mm = 1.1;
            }),
            "drills/through",
            warn,
        ),
    ];
    for (code, change, element, severity) in cases {
        let mut plan = clean_plan(&f);
        change(&mut plan, &f);
        let got = findings(&plan, &query);
        assert_eq!(
            got,
            vec![(code.to_string(), element.to_string(), severity)],
            "case {code}"
        );
    }

    // The same element twice gives the same evaluation (deterministic), and the order follows the plan.
    let mut plan = clean_plan(&f);
    plan.drills.push(across(&f, "twin", DRILL_S + 1.0, 0.0, 0.0));
    plan.planes.push(cut(
        "beyond",
        point(&f, HALF_LENGTH_MM + 1.0, 0.0, 0.0),
        f.axis,
        ResectedSide::None,
    ));
    let a = evaluate(&plan, &query);
    let b = evaluate(&plan, &query);
    assert_eq!(a, b);
    let codes: Vec<&str> = a.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["plane_misses_bone", "drills_collide"]);
}
