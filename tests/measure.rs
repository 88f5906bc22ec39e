//! Plan measurements against the bone (`guidesmith::measure`) on bone surfaces made by the product chain from
//! noise-free synthetic CT (partial-volume ramp, 0.4-0.5 mm voxels), on exact analytic meshes, and on the real
//! cranium. Every expected value is analytic.

mod common;

use std::f64::consts::PI;
use std::time::Instant;

use guidesmith::bone::{self, SurfaceOptions};
use guidesmith::grid::GridGeometry;
use guidesmith::measure::{
    angle_between_planes_deg, distance_along_bone, drill_crosses_slab, segment_polyline_distance,
    segment_segment_distance, BoneQuery, DrillKind, DrillOptions,
};
use guidesmith::mesh::{Mesh, MeshReport};
use guidesmith::progress::NoProgress;
use guidesmith::segment::{HuRange, SegmentRecipe};
use guidesmith::synth::{Phantom, Shape};
use guidesmith::volume::{self, SeriesInfo, Volume};
use nalgebra::{Rotation3, Unit, Vector3};

/// Bone HU: with air at -1000 HU and the threshold at 1 HU (iso 0.5 HU) the iso value is the exact midpoint, so the
/// iso-surface of the partial-volume ramp is the analytic surface.
const BONE_HU: f64 = 1001.0;
const AIR_HU: f64 = -1000.0;

/// The required accuracy of lengths against analytic truth, mm.
const LENGTH_TOLERANCE_MM: f64 = 0.01;

fn info() -> SeriesInfo {
    SeriesInfo {
        series_uid: String::new(),
        series_number: None,
        description: "measure phantom".into(),
        modality: "CT".into(),
        scanner: String::new(),
        kernel: String::new(),
        slices: 0,
        matrix: [0, 0],
        pixel_spacing_mm: [0.0, 0.0],
        slice_spacing_mm: None,
        thickness_mm: vec![],
        transfer_syntaxes: vec![],
        tilt_deg: 0.0,
        resampled: false,
        warnings: vec![],
        not_hounsfield: None,
        error: None,
    }
}

/// Sample `phantom` on an axis-aligned grid of `voxel_mm` covering `[lo, hi]`, and make its bone surface with the
/// product chain (threshold 1..3071 HU, marching cubes, checks).
fn bone_surface(phantom: &Phantom, lo: [f64; 3], hi: [f64; 3], voxel_mm: f64) -> Mesh {
    let dims = [0, 1, 2].map(|a| ((hi[a] - lo[a]) / voxel_mm).ceil() as usize + 1);
    let geometry = GridGeometry::axis_aligned(dims, [voxel_mm; 3], lo);
    let hu = phantom.sample(&geometry).expect("sample");
    let v = Volume {
        geometry,
        hu,
        series: info(),
    };
    let recipe = SegmentRecipe::new(HuRange::new(1, 3071).expect("range"));
    let model = bone::extract_bone(&v, &recipe, &SurfaceOptions::default(), &NoProgress).expect("surface");
    assert!(model.report.is_valid(), "{}", model.report);
    model.mesh
}

/// A unit vector tilted off patient z (so nothing lines up with the voxel grid) and two unit vectors normal to it.
fn tilted_frame() -> ([f64; 3], [f64; 3], [f64; 3]) {
    let rot = Rotation3::from_axis_angle(&Unit::new_normalize(Vector3::new(0.6, -0.8, 0.0)), 17f64.to_radians())
        * Rotation3::from_axis_angle(&Vector3::z_axis(), 11f64.to_radians());
    let col = |i: usize| {
        let c = rot.matrix().column(i);
        [c[0], c[1], c[2]]
    };
    (col(2), col(0), col(1))
}

fn at(c: [f64; 3], terms: &[([f64; 3], f64)]) -> [f64; 3] {
    let mut p = c;
    for (v, s) in terms {
        for a in 0..3 {
            p[a] += v[a] * s;
        }
    }
    p
}

const CENTER: [f64; 3] = [3.2, -1.7, 0.9];
const OUTER_R_MM: f64 = 8.0;
const INNER_R_MM: f64 = 5.0;
const HALF_LENGTH_MM: f64 = 16.0;

/// A hollow bone: a tilted cylinder of bone (radius 8 mm) with a closed marrow cavity (radius 5 mm, at air HU, so
/// the threshold leaves it hollow and the cortex is exactly 3 mm thick) ending 4 mm before each cap.
fn tube_phantom(voxel_mm: f64, hollow: bool) -> (Mesh, [f64; 3], [f64; 3], [f64; 3]) {
    let (axis, u, v) = tilted_frame();
    let end = |s: f64, len: f64| at(CENTER, &[(axis, s * len)]);
    let mut phantom = Phantom::new(AIR_HU).with_edge_width(2.0 * voxel_mm).with_layer(
        "bone",
        Shape::Cylinder {
            start_mm: end(-1.0, HALF_LENGTH_MM),
            end_mm: end(1.0, HALF_LENGTH_MM),
            radius_mm: OUTER_R_MM,
        },
        BONE_HU,
    );
    if hollow {
        phantom = phantom.with_layer(
            "marrow",
            Shape::Cylinder {
                start_mm: end(-1.0, HALF_LENGTH_MM - 4.0),
                end_mm: end(1.0, HALF_LENGTH_MM - 4.0),
                radius_mm: INNER_R_MM,
            },
            AIR_HU,
        );
    }
    let reach = HALF_LENGTH_MM + OUTER_R_MM + 2.0;
    let mesh = bone_surface(&phantom, CENTER.map(|c| c - reach), CENTER.map(|c| c + reach), voxel_mm);
    (mesh, axis, u, v)
}

#[test]
fn resection_length_and_sections_of_a_marching_cubes_cylinder() {
    let (mesh, axis, u, _) = tube_phantom(0.5, false);
    let q = BoneQuery::new(&mesh).expect("query");
    // Two parallel cuts across the cylinder, 13.4 mm apart along the axis.
    let (s1, s2) = (-6.3, 7.1);
    let a = q.section(at(CENTER, &[(axis, s1)]), axis).expect("section a");
    let b = q.section(at(CENTER, &[(axis, s2)]), axis).expect("section b");
    let d = distance_along_bone(&a, &b).expect("both cut the bone");
    eprintln!("resection: {d:?}");
    assert!(
        (d.centroid_distance_mm - (s2 - s1)).abs() <= LENGTH_TOLERANCE_MM,
        "{d:?}"
    );
    assert!((d.first_centroid_to_second_plane_mm - (s2 - s1)).abs() <= LENGTH_TOLERANCE_MM);
    assert!((d.second_centroid_to_first_plane_mm - (s2 - s1)).abs() <= LENGTH_TOLERANCE_MM);
    assert!(d.angle_deg.abs() < 1e-9);

    // Each section: one closed loop, counter-clockwise seen from the normal, area and perimeter of the circle.
    let (area, perimeter) = (PI * OUTER_R_MM * OUTER_R_MM, 2.0 * PI * OUTER_R_MM);
    for s in [&a, &b] {
        assert_eq!(s.loops.len(), 1, "{:?}", s.loops.len());
        assert!(s.loops[0].closed && s.open_loops == 0);
        let rel_area = (s.net_area_mm2 - area) / area;
        let rel_perimeter = (s.total_length_mm - perimeter) / perimeter;
        eprintln!(
            "cylinder section: area {:.4} mm^2 ({:+.4} %), perimeter {:.4} mm ({:+.4} %), {} points",
            s.net_area_mm2,
            100.0 * rel_area,
            s.total_length_mm,
            100.0 * rel_perimeter,
            s.loops[0].points_mm.len()
        );
        assert!(rel_area.abs() < 1e-3, "area {} vs {area}", s.net_area_mm2);
        assert!(
            rel_perimeter.abs() < 2e-3,
            "perimeter {} vs {perimeter}",
            s.total_length_mm
        );
        // The centroid lies on the axis.
        let c = s.centroid_mm.expect("centroid");
        let off = [0, 1, 2].map(|i| c[i] - CENTER[i]);
        let along = off[0] * axis[0] + off[1] * axis[1] + off[2] * axis[2];
        let radial = (off.iter().map(|x| x * x).sum::<f64>() - along * along).max(0.0).sqrt();
        assert!(radial < LENGTH_TOLERANCE_MM, "centroid {radial} mm off the axis");
    }

    // Oblique cuts (20 degrees off the cross-section) still meet the axis at the right points: the ellipse centroid
    // is on the axis, so the resection length along the axis is unchanged; the angle between them is measured.
    let tilt = 20f64.to_radians();
    let n1 = at([0.0; 3], &[(axis, tilt.cos()), (u, tilt.sin())]);
    let n2 = at([0.0; 3], &[(axis, tilt.cos()), (u, -tilt.sin())]);
    let a = q.section(at(CENTER, &[(axis, s1)]), n1).expect("section a");
    let b = q.section(at(CENTER, &[(axis, s2)]), n2).expect("section b");
    let d = distance_along_bone(&a, &b).expect("both cut the bone");
    assert!(
        (d.centroid_distance_mm - (s2 - s1)).abs() <= LENGTH_TOLERANCE_MM,
        "{d:?}"
    );
    assert!((d.angle_deg - 40.0).abs() <= 0.01, "{d:?}");
    let angle = angle_between_planes_deg(n1, n2).expect("angle");
    assert!((angle - 40.0).abs() <= 0.01, "{angle}");
    let ellipse = area / tilt.cos();
    assert!(
        (a.net_area_mm2 - ellipse).abs() / ellipse < 1e-3,
        "{} vs {ellipse}",
        a.net_area_mm2
    );

    // A plane beside the bone cuts nothing.
    let miss = q
        .section(at(CENTER, &[(axis, HALF_LENGTH_MM + 1.0)]), axis)
        .expect("section");
    assert!(miss.is_empty() && miss.centroid_mm.is_none());
    assert!(distance_along_bone(&a, &miss).is_none());
}

#[test]
fn cortices_and_bicortical_length_through_a_marching_cubes_tube() {
    for voxel_mm in [0.4, 0.5] {
        let (mesh, axis, u, v) = tube_phantom(voxel_mm, true);
        let report = MeshReport::new(&mesh);
        assert_eq!(report.components, 2, "outer surface and marrow cavity");
        let q = BoneQuery::new(&mesh).expect("query");
        let options = DrillOptions {
            lead_in_mm: 2.0,
            marrow_gap_mm: 15.0,
        };
        // Through the axis, and off it by 3 mm (cortex along the chord: sqrt(64-9) - sqrt(25-9)).
        for (offset, cortex) in [(0.0, OUTER_R_MM - INNER_R_MM), (3.0, (55f64).sqrt() - 4.0)] {
            let half_chord = (OUTER_R_MM * OUTER_R_MM - offset * offset).sqrt();
            // Planned entry 1 mm outside the surface along the drill, and 1 mm inside it (the lead-in finds it).
            for planned_outside in [1.0, -1.0] {
                let entry = at(
                    CENTER,
                    &[(axis, 2.5), (v, offset), (u, -(half_chord + planned_outside))],
                );
                let length = planned_outside + 2.0 * half_chord + 1.0;
                let path = q.drill_with(entry, u, length, 2.0, &options).expect("drill");
                assert_eq!(path.kind, DrillKind::Bicortical);
                assert_eq!(path.intervals.len(), 2, "{:?}", path.intervals);
                let e = path.entry.expect("entry");
                assert!((e.t_mm - planned_outside).abs() <= LENGTH_TOLERANCE_MM, "{e:?}");
                for iv in &path.intervals {
                    assert!(
                        (iv.length_mm - cortex).abs() <= LENGTH_TOLERANCE_MM,
                        "{voxel_mm}: {iv:?} vs {cortex}"
                    );
                }
                let bicortical = path.bicortical_length_mm.expect("bicortical length");
                assert!(
                    (bicortical - 2.0 * half_chord).abs() <= LENGTH_TOLERANCE_MM,
                    "{bicortical}"
                );
                let past = path.tip_past_far_exit_mm.expect("tip past");
                assert!((past - 1.0).abs() <= LENGTH_TOLERANCE_MM, "{past}");
                assert!((path.bone_within_length_mm - 2.0 * cortex).abs() <= 2.0 * LENGTH_TOLERANCE_MM);
                assert!(!path.tip_in_bone);
                eprintln!(
                    "voxel {voxel_mm} mm, offset {offset} mm: cortices {:.4} / {:.4} mm (truth {cortex:.4}), \
                     bicortical {bicortical:.4} mm (truth {:.4})",
                    path.intervals[0].length_mm,
                    path.intervals[1].length_mm,
                    2.0 * half_chord
                );
            }
        }
        // Stopping in the marrow cavity or in the far cortex is monocortical, and the far exit is still reported.
        let entry = at(CENTER, &[(axis, 2.5), (u, -(OUTER_R_MM + 1.0))]);
        for length in [9.0, 16.0] {
            let path = q.drill_with(entry, u, length, 2.0, &options).expect("drill");
            assert_eq!(path.kind, DrillKind::Monocortical, "length {length}");
            assert_eq!(path.tip_in_bone, length > 1.0 + 13.0);
            assert!((path.bicortical_length_mm.expect("far exit") - 16.0).abs() <= LENGTH_TOLERANCE_MM);
        }
        // With a marrow gap below the cavity's 10 mm, the near cortex is its own bone piece.
        let narrow = DrillOptions {
            marrow_gap_mm: 5.0,
            ..options
        };
        let path = q.drill_with(entry, u, 9.0, 2.0, &narrow).expect("drill");
        assert_eq!(path.kind, DrillKind::Bicortical);
        assert!((path.bicortical_length_mm.expect("far exit") - 3.0).abs() <= LENGTH_TOLERANCE_MM);
        // Misses: beside the bone, and parallel to it outside.
        let beside = at(CENTER, &[(v, OUTER_R_MM + 0.5), (u, -20.0)]);
        let path = q.drill_with(beside, u, 40.0, 2.0, &options).expect("drill");
        assert_eq!(path.kind, DrillKind::Missed);
        assert!(path.crossings.is_empty() && path.entry.is_none() && path.bicortical_length_mm.is_none());
        let along = at(CENTER, &[(v, OUTER_R_MM + 0.5), (axis, -30.0)]);
        assert_eq!(q.drill(along, axis, 60.0, 2.0).expect("drill").kind, DrillKind::Missed);
        // Planned deeper than the lead-in: the drill starts inside bone.
        let deep = at(CENTER, &[(axis, 2.5), (u, -(OUTER_R_MM - 2.5))]);
        assert_eq!(
            q.drill_with(deep, u, 5.0, 2.0, &options).expect("drill").kind,
            DrillKind::StartsInBone
        );
    }
}

#[test]
fn drill_crosses_a_blade_slab_inside_bone_but_not_in_the_marrow() {
    let (mesh, axis, u, v) = tube_phantom(0.5, true);
    let q = BoneQuery::new(&mesh).expect("query");
    let options = DrillOptions {
        lead_in_mm: 2.0,
        marrow_gap_mm: 15.0,
    };
    let entry = at(CENTER, &[(axis, 2.5), (u, -(OUTER_R_MM + 1.0))]);
    let path = q.drill_with(entry, u, 18.0, 2.0, &options).expect("drill");
    let blade = 1.0;
    // A cut across the drill in the near cortex (1.5 mm deep): the slab's whole thickness is in bone.
    let hit = drill_crosses_slab(&path, at(CENTER, &[(u, -6.5)]), u, blade)
        .expect("inputs")
        .expect("crosses in bone");
    assert!((hit.start_t_mm - 2.0).abs() <= LENGTH_TOLERANCE_MM, "{hit:?}");
    assert!((hit.end_t_mm - 3.0).abs() <= LENGTH_TOLERANCE_MM, "{hit:?}");
    assert!((hit.in_bone_mm - blade).abs() <= LENGTH_TOLERANCE_MM);
    // The same cut through the marrow cavity (the drill's axis is in the hollow there): no crossing in bone.
    assert!(drill_crosses_slab(&path, CENTER, u, blade).expect("inputs").is_none());
    // A cut beside the bone, also none; a tilted cut through the far cortex, some.
    assert!(drill_crosses_slab(&path, at(CENTER, &[(u, 9.5)]), u, blade)
        .expect("inputs")
        .is_none());
    let tilted = at([0.0; 3], &[(u, 0.8), (v, 0.6)]);
    let far = drill_crosses_slab(&path, at(CENTER, &[(u, 6.5)]), tilted, blade)
        .expect("inputs")
        .expect("far cortex");
    // Half extent along the drill: (blade / 2 + r * sin) / cos, with sin = 0.6 and cos = 0.8.
    let half = (0.5 * blade + 1.0 * 0.6) / 0.8;
    assert!((far.in_bone_mm - 2.0 * half).abs() <= LENGTH_TOLERANCE_MM, "{far:?}");
    // A cut parallel to the drill: it meets the drill all along (both cortices) or not at all.
    let along = drill_crosses_slab(&path, at(CENTER, &[(v, 1.4)]), v, blade)
        .expect("inputs")
        .expect("parallel, within reach");
    assert!((along.in_bone_mm - 6.0).abs() <= 2.0 * LENGTH_TOLERANCE_MM, "{along:?}");
    assert!(drill_crosses_slab(&path, at(CENTER, &[(v, 1.6)]), v, blade)
        .expect("inputs")
        .is_none());
}

/// An exact closed pipe: outer radius `r_out`, inner `r_in`, `n` segments, rings at z = -h, 0, h, annular caps.
/// Vertex 0 of every ring is at angle 0 (on +x), so axis-aligned lines meet vertices and edges exactly.
fn analytic_pipe(r_out: f64, r_in: f64, h: f64, n: u32) -> Mesh {
    let mut positions = Vec::new();
    let zs = [-h, 0.0, h];
    // Index of vertex k of ring z (0..3) on the outer (0) or inner (1) wall.
    let idx = |wall: u32, zi: u32, k: u32| (wall * 3 + zi) * n + (k % n);
    for r in [r_out, r_in] {
        for z in zs {
            for k in 0..n {
                let a = 2.0 * PI * f64::from(k) / f64::from(n);
                let (s, c) = if k == 0 { (0.0, 1.0) } else { a.sin_cos() };
                positions.push([r * c, r * s, z]);
            }
        }
    }
    let mut triangles = Vec::new();
    for k in 0..n {
        for zi in 0..2 {
            // Outer wall, outward (counter-clockwise seen from outside).
            let (a, b, c, d) = (
                idx(0, zi, k),
                idx(0, zi, k + 1),
                idx(0, zi + 1, k + 1),
                idx(0, zi + 1, k),
            );
            triangles.push([a, b, c]);
            triangles.push([a, c, d]);
            // Inner wall, facing the axis.
            let (a, b, c, d) = (
                idx(1, zi, k),
                idx(1, zi, k + 1),
                idx(1, zi + 1, k + 1),
                idx(1, zi + 1, k),
            );
            triangles.push([a, c, b]);
            triangles.push([a, d, c]);
        }
        // Top cap (z = h, facing +z) and bottom cap (z = -h, facing -z).
        let (o0, o1, i0, i1) = (idx(0, 2, k), idx(0, 2, k + 1), idx(1, 2, k), idx(1, 2, k + 1));
        triangles.push([o0, o1, i1]);
        triangles.push([o0, i1, i0]);
        let (o0, o1, i0, i1) = (idx(0, 0, k), idx(0, 0, k + 1), idx(1, 0, k), idx(1, 0, k + 1));
        triangles.push([o0, i1, o1]);
        triangles.push([o0, i0, i1]);
    }
    Mesh::new(positions, triangles).expect("pipe")
}

#[test]
fn analytic_pipe_through_vertices_and_edges_counts_each_crossing_once() {
    let (r_out, r_in, h, n) = (9.0, 6.5, 10.0, 360);
    let mesh = analytic_pipe(r_out, r_in, h, n);
    let report = MeshReport::new(&mesh);
    assert!(report.is_valid(), "{report}");
    assert!(mesh.signed_volume_mm3() > 0.0);
    let q = BoneQuery::new(&mesh).expect("query");
    // Along +x at z = 0 through ring vertices (each shared by six triangles) and at z = h / 2 through the vertical
    // edges at angle 0 and 180 degrees (each shared by two triangles).
    for z in [0.0, 0.5 * h] {
        let path = q
            .drill_with(
                [-12.0, 0.0, z],
                [1.0, 0.0, 0.0],
                24.0,
                2.0,
                &DrillOptions {
                    lead_in_mm: 0.0,
                    marrow_gap_mm: 20.0,
                },
            )
            .expect("drill");
        let t: Vec<f64> = path.crossings.iter().map(|c| c.t_mm).collect();
        assert_eq!(t.len(), 4, "z {z}: {:?}", path.crossings);
        let expect = [12.0 - r_out, 12.0 - r_in, 12.0 + r_in, 12.0 + r_out];
        for (got, want) in t.iter().zip(expect) {
            assert!((got - want).abs() < 1e-9, "z {z}: {t:?}");
        }
        let entering: Vec<bool> = path.crossings.iter().map(|c| c.entering).collect();
        assert_eq!(entering, [true, false, true, false]);
        assert!((path.intervals[0].length_mm - (r_out - r_in)).abs() < 1e-9);
        assert!((path.bicortical_length_mm.expect("length") - 2.0 * r_out).abs() < 1e-9);
        // The facet hit is half a segment off radial.
        assert!(path.entry.expect("entry").incidence_deg <= 180.0 / f64::from(n) + 1e-9);
    }
    // Along the axis through the hole: nothing; through the wall along z (edge-on to every wall triangle, through
    // the cap vertices at angle 0): enters at the bottom cap and leaves at the top.
    assert!(q
        .crossings([0.0, 0.0, -20.0], [0.0, 0.0, 1.0], 0.0, 40.0)
        .expect("c")
        .is_empty());
    let c = q.crossings([7.5, 0.0, -20.0], [0.0, 0.0, 1.0], 0.0, 40.0).expect("c");
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].entering && !c[1].entering);
    assert!((c[0].t_mm - (20.0 - h)).abs() < 1e-12 && (c[1].t_mm - (20.0 + h)).abs() < 1e-12);

    // The plane z = 0 holds a ring of vertices (they count as above it): two closed loops, the outer n-gon positive,
    // the inner one negative, exactly.
    let s = q.section([0.0, 0.0, 0.0], [0.0, 0.0, 1.0]).expect("section");
    assert_eq!(s.loops.len(), 2);
    assert_eq!(s.open_loops, 0);
    let ngon = |r: f64| 0.5 * f64::from(n) * r * r * (2.0 * PI / f64::from(n)).sin();
    assert!(
        (s.loops[0].signed_area_mm2 - ngon(r_out)).abs() < 1e-9,
        "{}",
        s.loops[0].signed_area_mm2
    );
    assert!(
        (s.loops[1].signed_area_mm2 + ngon(r_in)).abs() < 1e-9,
        "{}",
        s.loops[1].signed_area_mm2
    );
    assert!((s.net_area_mm2 - (ngon(r_out) - ngon(r_in))).abs() < 1e-9);
    let c = s.centroid_mm.expect("centroid");
    assert!(c.iter().all(|x| x.abs() < 1e-9), "{c:?}");
    assert_eq!(s.loops[0].points_mm.len(), n as usize);
}

#[test]
fn drill_to_nerve_and_drill_to_drill_distances() {
    // A drill along x from the origin, 20 mm; radius 1 mm.
    let (p0, p1) = ([0.0, 0.0, 0.0], [20.0, 0.0, 0.0]);
    // A nerve canal: an arc of radius 10 mm around (10, 0, 15) in the x-z plane, sampled every 3 degrees with a
    // sample at the bottom (10, 0, 5): the closest point, 5 mm from the drill axis.
    let nerve: Vec<[f64; 3]> = (-30..=30)
        .map(|k| {
            let a = f64::from(k) * 3f64.to_radians();
            [10.0 + 10.0 * a.sin(), 0.0, 15.0 - 10.0 * a.cos()]
        })
        .collect();
    let c = segment_polyline_distance(p0, p1, &nerve, 1.0, 1.25)
        .expect("inputs")
        .expect("closest");
    assert!((c.closest.distance_mm - 5.0).abs() <= 1e-9, "{c:?}");
    assert!((c.clearance_mm - 2.75).abs() <= 1e-9);
    assert!((c.closest.first_mm[0] - 10.0).abs() <= 1e-9);
    // A straight canal, skew to the drill: distance along the common perpendicular.
    let skew = [[7.5, -10.0, 4.0], [7.5, 10.0, -2.0]];
    let c = segment_polyline_distance(p0, p1, &skew, 1.0, 1.25)
        .expect("inputs")
        .expect("closest");
    // The canal passes x = 7.5 at y = 10 (4 - 6 * t), z = 4 - 6 t; its distance to the x axis is min |(y, z)|.
    let truth = {
        let (a, b): ([f64; 2], [f64; 2]) = ([-10.0, 4.0], [20.0, -6.0]);
        let t = -(a[0] * b[0] + a[1] * b[1]) / (b[0] * b[0] + b[1] * b[1]);
        ((a[0] + t * b[0]).powi(2) + (a[1] + t * b[1]).powi(2)).sqrt()
    };
    assert!(
        (c.closest.distance_mm - truth).abs() <= 1e-9,
        "{} vs {truth}",
        c.closest.distance_mm
    );

    // Two drills of radius 1 mm crossing 1.5 mm apart collide (clearance -0.5 mm); 2.5 mm apart they clear.
    for (gap, clear) in [(1.5, false), (2.5, true)] {
        let c = segment_segment_distance(p0, p1, [10.0, -10.0, gap], [10.0, 10.0, gap]);
        let clearance = c.distance_mm - 1.0 - 1.0;
        assert!((c.distance_mm - gap).abs() <= 1e-12);
        assert_eq!(clearance >= 0.0, clear, "gap {gap}");
    }
    // Parallel drills side by side.
    let c = segment_segment_distance(p0, p1, [5.0, 1.8, 0.0], [25.0, 1.8, 0.0]);
    assert!((c.distance_mm - 1.8).abs() <= 1e-12);
}

#[test]
fn measurements_are_identical_whatever_the_thread_count() {
    let (mesh, axis, u, _) = tube_phantom(0.5, true);
    let run = || {
        let q = BoneQuery::new(&mesh).expect("query");
        let s = q.section(at(CENTER, &[(axis, 1.0)]), axis).expect("section");
        let d = q.drill(at(CENTER, &[(u, -10.0)]), u, 20.0, 2.0).expect("drill");
        serde_json::to_string(&(s, d)).expect("json")
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(run);
    assert_eq!(one, run());
    assert!(one.contains("\"kind\":\"bicortical\""));
}

#[test]
fn cranium_maxilla_section_and_drill() {
    let Some(dir) = common::data("ct/cranium-0051") else {
        return;
    };
    let (v, _) = volume::load(&dir, None, &NoProgress).expect("load");
    let recipe = SegmentRecipe::new("bone".parse().expect("preset"));
    let model = bone::extract_bone(&v, &recipe, &SurfaceOptions::default(), &NoProgress).expect("surface");
    let t = Instant::now();
    let q = BoneQuery::new(&model.mesh).expect("query");
    let build_s = t.elapsed().as_secs_f64();
    let b = q.bounds();
    eprintln!(
        "cranium: {} triangles, bounds {:?}..{:?}, BoneQuery::new {build_s:.3} s",
        model.mesh.triangles.len(),
        b.min_mm,
        b.max_mm
    );
    let t = Instant::now();
    let s = q.section(MAXILLA_PLANE_POINT_MM, [0.0, 0.0, 1.0]).expect("section");
    let section_s = t.elapsed().as_secs_f64();
    eprintln!(
        "maxilla axial section: {} loops, {:.1} mm perimeter, {:.1} mm^2 net, centroid {:?}, {section_s:.4} s",
        s.loops.len(),
        s.total_length_mm,
        s.net_area_mm2,
        s.centroid_mm
    );
    assert_eq!(s.open_loops, 0, "every loop closes on the closed cranium surface");
    assert!(s.loops.len() >= 2, "{} loops", s.loops.len());
    assert!(s.net_area_mm2 > 0.0 && s.loops.iter().all(|l| l.points_mm.len() >= 3));
    // The net area equals the sum of the loops' signed areas, and holes exist (sinuses, canals).
    let sum: f64 = s.loops.iter().map(|l| l.signed_area_mm2).sum();
    assert!((sum - s.net_area_mm2).abs() < 1e-6 * s.net_area_mm2.abs());
    assert!(s.loops.iter().any(|l| l.signed_area_mm2 < 0.0));

    let t = Instant::now();
    let d = q
        .drill(MAXILLA_DRILL_ENTRY_MM, MAXILLA_DRILL_DIR, 12.0, 2.0)
        .expect("drill");
    let drill_s = t.elapsed().as_secs_f64();
    eprintln!(
        "maxilla drill: {:?}, entry {:?}, far exit {:?}, intervals {:?}, bicortical {:?} mm, {drill_s:.5} s",
        d.kind,
        d.entry.map(|e| e.point_mm),
        d.far_exit.map(|e| e.point_mm),
        d.intervals.iter().map(|i| i.length_mm).collect::<Vec<_>>(),
        d.bicortical_length_mm
    );
    assert_eq!(d.kind, DrillKind::Bicortical);
    let (entry, exit) = (d.entry.expect("entry"), d.far_exit.expect("far exit"));
    assert!(
        entry.t_mm > 0.0 && entry.t_mm < exit.t_mm && exit.t_mm < 15.0,
        "{entry:?} {exit:?}"
    );
    let wall = d.bicortical_length_mm.expect("length");
    assert!(
        wall > 2.0 && wall < 10.0,
        "anterior maxillary wall {wall} mm along the drill"
    );
    assert_eq!(
        d.crossings.len() % 2,
        0,
        "a line through a closed surface crosses it an even number of times"
    );
    assert_eq!(d.crossings.iter().filter(|c| c.entering).count(), d.crossings.len() / 2);
}

/// An axial plane through the upper teeth and the maxillary alveolar process of cranium-0051 (LPS mm; the series
/// runs from z = -60 mm, below the teeth, to the vertex at z = 98 mm).
const MAXILLA_PLANE_POINT_MM: [f64; 3] = [0.0, 0.0, -42.0];
/// A drill into the anterior maxilla, 8 mm right of the midline, from 2 mm in front of it (-y is anterior in LPS),
/// straight back; its anterior wall there is about 5.5 mm thick along the drill, and the next bone is 60 mm behind.
const MAXILLA_DRILL_ENTRY_MM: [f64; 3] = [-8.0, -60.0, -30.0];
const MAXILLA_DRILL_DIR: [f64; 3] = [0.0, 1.0, 0.0];
