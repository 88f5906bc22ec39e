//! A mandible-like arc of known radius bridged by a straight cylindrical "fibula": the proposal against the analytic
//! optimum (equal division, sagitta `R (1 - cos(phi / 2n))`), the layout's transforms, cuts and gaps against their
//! construction, and the measurements against closed forms (every face plane of an equal division is radial).

use super::*;
use crate::measure::BoneQuery;
use crate::mesh::shapes::cylinder;

const R_MM: f64 = 45.0;
const PHI_DEG: f64 = 100.0;

/// The arc from -phi/2 to +phi/2 about +y, in the xy plane, centre at the origin, as a polyline of 0.01 deg steps.
fn arc() -> Vec<[f64; 3]> {
    let n = (PHI_DEG / 0.01) as usize;
    (0..=n)
        .map(|i| {
            let t = (-0.5 * PHI_DEG + PHI_DEG * i as f64 / n as f64).to_radians();
            [R_MM * t.sin(), R_MM * t.cos(), 0.0]
        })
        .collect()
}

fn limits(count: Option<usize>) -> ProposeLimits {
    ProposeLimits {
        count,
        min_length_mm: 20.0,
        max_mean_deviation_mm: 1.5,
        max_deviation_mm: 2.0,
    }
}

/// The polar angle of a point of the arc, deg.
fn angle_deg(p: [f64; 3]) -> f64 {
    p[0].atan2(p[1]).to_degrees()
}

#[test]
fn the_proposed_ends_on_an_arc_are_the_equal_division_with_the_analytic_sagitta() {
    let contour = arc();
    for n in 1..=3usize {
        let p = propose_ends(&contour, &limits(Some(n))).unwrap();
        assert_eq!(p.ends_mm.len(), n + 1);
        let beta = (PHI_DEG / (2.0 * n as f64)).to_radians();
        for (k, e) in p.ends_mm.iter().enumerate() {
            let expected = -0.5 * PHI_DEG + PHI_DEG * k as f64 / n as f64;
            assert!(
                (angle_deg(*e) - expected).abs() < 0.01,
                "{n} segments, end {k}: {} deg, expected {expected}",
                angle_deg(*e)
            );
        }
        let sagitta = R_MM * (1.0 - beta.cos());
        assert!(
            (p.deviation.max_mm - sagitta).abs() < 0.005,
            "{n} segments: max deviation {} mm, analytic {sagitta}",
            p.deviation.max_mm
        );
        // The mean distance of an arc from its chord: R (sin b / b - cos b).
        let mean = R_MM * (beta.sin() / beta - beta.cos());
        assert!(
            (p.deviation.mean_mm - mean).abs() < 0.005,
            "{n} segments: mean {} mm, analytic {mean}",
            p.deviation.mean_mm
        );
    }
    // Four segments would be 19.5 mm chords, under the 20 mm minimum.
    assert!(propose_ends(&contour, &limits(Some(4))).is_err());
    // The fewest within 2 mm: three (sagittas 16.1, 4.2, 1.9 mm).
    let fewest = propose_ends(&contour, &limits(None)).unwrap();
    assert_eq!(fewest.ends_mm.len(), 4);
    assert!(fewest.within_limits);
}

/// A straight "fibula" along +z from z = -150 (distal tip) to +150, lateral -x, radius 7 mm.
fn fibula() -> DonorAxis {
    DonorAxis {
        distal_tip_mm: [0.0, 0.0, -150.0],
        proximal_tip_mm: [0.0, 0.0, 150.0],
        lateral: [-1.0, 0.0, 0.0],
        radius_mm: 7.0,
    }
}

/// The resection planes of the arc: radial planes at its ends, normals along the contour.
fn recipient(ends: Vec<[f64; 3]>) -> RecipientSide {
    let tangent = |deg: f64| {
        let t = deg.to_radians();
        [t.cos(), -t.sin(), 0.0]
    };
    let first = ends[0];
    let last = *ends.last().unwrap();
    RecipientSide {
        first_plane: FlapPlane {
            point_mm: first,
            normal: tangent(angle_deg(first)),
        },
        second_plane: Some(FlapPlane {
            point_mm: last,
            normal: tangent(angle_deg(last)),
        }),
        ends_mm: ends,
        inside_mm: [0.0; 3],
    }
}

fn options(pedicle_deg: f64) -> LayoutOptions {
    LayoutOptions {
        distal_offset_mm: None,
        keep_distal_mm: 70.0,
        pedicle_deg,
        blade_thickness_mm: 0.6,
        min_gaps: vec![
            GapRule {
                radius_mm: 7.0,
                gap_mm: 1.5,
                lateral_half: false,
            },
            GapRule {
                radius_mm: 25.0,
                gap_mm: 3.4,
                lateral_half: true,
            },
        ],
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    (Vector3::from(a) - Vector3::from(b)).norm()
}

#[test]
fn segments_are_laid_on_the_fibula_and_carried_onto_their_chords() {
    let contour = arc();
    for n in 1..=3usize {
        let ends = propose_ends(&contour, &limits(Some(n))).unwrap().ends_mm;
        let rec = recipient(ends.clone());
        let axis = fibula();
        for pedicle in [0.0, 30.0] {
            let segs = layout(&rec, &axis, &options(pedicle)).unwrap();
            let beta = (PHI_DEG / (2.0 * n as f64)).to_radians();
            for (k, s) in segs.iter().enumerate() {
                let t = &s.mandible_from_donor;
                assert!(t.orthonormality_error() < 1e-12);
                let length = dist(ends[k], ends[k + 1]);
                // The donor's centre line from the segment's start face to its end face lands on the chord.
                assert!(dist(t.point(axis.at(s.donor_start_mm)), ends[k]) < 1e-9);
                assert!(dist(t.point(axis.at(s.donor_start_mm + length)), ends[k + 1]) < 1e-9);
                // The lateral side faces lingual (towards the arc's centre) turned by the pedicle angle about the
                // chord: its angle from the inward horizontal is the pedicle angle.
                let lateral = Vector3::from(t.vector([-1.0, 0.0, 0.0]));
                let d = (Vector3::from(ends[k + 1]) - Vector3::from(ends[k])).normalize();
                let mid = (Vector3::from(ends[k]) + Vector3::from(ends[k + 1])) * 0.5;
                let inward = -(mid - d * mid.dot(&d)).normalize();
                let turned = lateral.dot(&inward).clamp(-1.0, 1.0).acos().to_degrees();
                assert!((turned - pedicle).abs() < 1e-9, "pedicle {pedicle}: {turned}");
                assert!(lateral.dot(&d).abs() < 1e-12);
            }
            let m = measure(&rec, &segs, &contour, &axis, 0.6, &[0.6, 0.6]);
            for (k, s) in m.segments.iter().enumerate() {
                // Every face of an equal division is radial: each face leans beta from the cross-section.
                assert!((s.start_wedge_deg - beta.to_degrees()).abs() < 1e-3, "{s:?}");
                assert!((s.end_wedge_deg - beta.to_degrees()).abs() < 1e-3, "{s:?}");
                // Lines parallel to a chord at distance h from the centre run 2 h tan(beta) between radial planes.
                let h = R_MM * beta.cos();
                assert!((s.length_mm - 2.0 * R_MM * beta.sin()).abs() < 1e-3);
                assert!(
                    (s.buccal_length_mm - 2.0 * (h + 7.0) * beta.tan()).abs() < 1e-3,
                    "{k}: {s:?}"
                );
                assert!(
                    (s.lingual_length_mm - 2.0 * (h - 7.0) * beta.tan()).abs() < 1e-3,
                    "{k}: {s:?}"
                );
            }
            // The faces close on one another; the stump faces are half a blade away.
            assert!(m.junction_gaps_mm.iter().all(|g| *g < 1e-9), "{:?}", m.junction_gaps_mm);
            assert!(
                m.stump_gaps_mm.iter().all(|g| (g - 0.3).abs() < 1e-9),
                "{:?}",
                m.stump_gaps_mm
            );
            // On the donor the neighbours are exactly as far apart as the tighter requirement asks.
            for (k, g) in m.donor_gaps_mm.iter().enumerate() {
                assert!(*g >= 1.5 - 1e-9, "junction {k}: {g}");
            }
            // The distal tip keeps exactly what was asked below the first cut (the offset's default).
            assert!((m.left_distal_mm - 70.0).abs() < 1e-9, "{}", m.left_distal_mm);
            let cuts = donor_cuts(&rec, &segs, 0.6);
            assert_eq!(cuts.len(), 2 * n);
            // Each cut is half a blade off its face, away from the segment, and faces away from it.
            for c in &cuts {
                let s = &segs[c.segment];
                let length = dist(s.start_mm, s.end_mm);
                let face_t = s.donor_start_mm + if c.start { 0.0 } else { length };
                let face_point = Vector3::from(axis.at(face_t));
                let into_segment = axis.direction() * if c.start { 1.0 } else { -1.0 };
                let n_cut = Vector3::from(c.plane.normal);
                assert!(n_cut.dot(&into_segment) < 0.0);
                let offset = (face_point - Vector3::from(c.plane.point_mm)).dot(&n_cut);
                assert!((offset + 0.3).abs() < 1e-9, "{offset}");
            }
        }
    }
}

#[test]
fn a_gap_too_small_for_the_wedge_makes_the_cuts_meet_inside_the_bone() {
    let ends = propose_ends(&arc(), &limits(Some(3))).unwrap().ends_mm;
    let rec = recipient(ends);
    let axis = fibula();
    let segs = layout(&rec, &axis, &options(0.0)).unwrap();
    // Move the second segment onto the first on the donor: the wedge between them closes inside the bone.
    let mut squeezed = segs.clone();
    let length0 = dist(segs[0].start_mm, segs[0].end_mm);
    let shift = segs[1].donor_start_mm - (segs[0].donor_start_mm + length0);
    for s in squeezed.iter_mut().skip(1) {
        let back = Vector3::from(axis.direction()) * shift;
        s.donor_start_mm -= shift;
        let r = s.mandible_from_donor.matrix();
        let t = Vector3::from(s.mandible_from_donor.translation_mm) + r * back;
        s.mandible_from_donor.translation_mm = [t.x, t.y, t.z];
    }
    let m = measure(&rec, &squeezed, &arc(), &axis, 0.6, &[0.6, 0.6]);
    assert!(m.donor_gaps_mm[0] < 0.0, "{:?}", m.donor_gaps_mm);
    assert!(m.junction_gaps_mm[0] < 1e-9);
    // A recorded transform that no longer matches its chord leaves a gap on the mandible.
    let mut moved = segs.clone();
    moved[1].mandible_from_donor.translation_mm[2] += 2.0;
    let m = measure(&rec, &moved, &arc(), &axis, 0.6, &[0.6, 0.6]);
    assert!((m.junction_gaps_mm[0] - 2.0).abs() < 1e-9 && (m.junction_gaps_mm[1] - 2.0).abs() < 1e-9);
}

#[test]
fn the_fibula_axis_is_found_beside_a_thicker_bone() {
    // A "tibia" of radius 15 mm beside a "fibula" of radius 7 mm, 30 mm apart, both along z; the fibula runs from
    // z = -180 to +170, the tibia beyond both.
    let mut bone = cylinder([30.0, 0.0, -200.0], [30.0, 0.0, 200.0], 15.0, 96).unwrap();
    bone.merge(&cylinder([0.0, 0.0, -180.0], [0.0, 0.0, 170.0], 7.0, 96).unwrap())
        .unwrap();
    let query = BoneQuery::new(&bone).unwrap();
    let axis = donor_axis(&bone, &query, None, [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]).unwrap();
    assert!(dist(axis.distal_tip_mm, [0.0, 0.0, -180.0]) < 1e-6, "{axis:?}");
    assert!(dist(axis.proximal_tip_mm, [0.0, 0.0, 170.0]) < 1e-6, "{axis:?}");
    assert!(dist(axis.lateral, [-1.0, 0.0, 0.0]) < 1e-9);
    // The prism's corners are 7 mm from its axis.
    assert!((axis.radius_mm - 7.0).abs() < 1e-6, "{}", axis.radius_mm);
    // Pointing at the tibia picks it instead.
    let tibia = donor_axis(
        &bone,
        &query,
        Some([30.0, 0.0, 0.0]),
        [0.0, 0.0, -1.0],
        [-1.0, 0.0, 0.0],
    )
    .unwrap();
    assert!(dist(tibia.distal_tip_mm, [30.0, 0.0, -200.0]) < 1e-6, "{tibia:?}");
}
