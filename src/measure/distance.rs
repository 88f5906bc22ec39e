//! Distances and angles between plan elements: planes, drill axes, structures (nerve polylines) and blade slabs.
//!
//! Closed forms only; the one place floating point needs care is the closest points of two nearly parallel segments,
//! where the usual formula divides by a vanishing determinant: below [`PARALLEL_SIN2`] the segments are treated as
//! parallel and the closest pair is found by clamped projection instead, which gives the right distance (the
//! distance is flat along the common direction, so which pair is picked does not change it).

use serde::Serialize;

use super::query::DrillPath;
use super::section::Section;
use super::{finite_point, non_negative, unit, MeasureError};
use crate::mesh::{add, cross, dot, norm, scale, sub};

/// Squared sine of the angle between two segments below which they are treated as parallel (dimensionless). The
/// determinant `|d1|^2 |d2|^2 sin^2` loses all its digits to cancellation around `1e-16`; `1e-12` keeps four of them
/// and corresponds to 1e-6 rad, where the closest-point parameter is ill-conditioned anyway.
pub const PARALLEL_SIN2: f64 = 1e-12;

/// Closest points of two segments (or a segment and a polyline).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Closest {
    /// Distance between the closest points, mm.
    pub distance_mm: f64,
    /// Closest point on the first segment, LPS mm.
    pub first_mm: [f64; 3],
    /// Closest point on the second segment (or polyline), LPS mm.
    pub second_mm: [f64; 3],
    /// Its fraction along the first segment, `0..=1`.
    pub first_fraction: f64,
    /// Its fraction along the second segment (for a polyline: along segment `segment_index`), `0..=1`.
    pub second_fraction: f64,
}

/// Closest approach of a drill axis to a structure polyline, with the clearance between their surfaces.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PolylineClosest {
    /// The closest points (second: on the polyline).
    pub closest: Closest,
    /// Index of the polyline segment holding the closest point (the first one on ties).
    pub segment_index: usize,
    /// `distance - drill radius - structure radius`, mm; negative when they overlap.
    pub clearance_mm: f64,
}

/// How two cutting planes sit along the bone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PlaneDistance {
    /// Distance between the two section centroids, mm: the resection (or segment) length along the bone.
    pub centroid_distance_mm: f64,
    /// Perpendicular distance from the first section's centroid to the second plane, mm.
    pub first_centroid_to_second_plane_mm: f64,
    /// Perpendicular distance from the second section's centroid to the first plane, mm.
    pub second_centroid_to_first_plane_mm: f64,
    /// Acute angle between the planes, degrees.
    pub angle_deg: f64,
}

/// Where a drill meets a blade's slab inside bone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlabCrossing {
    /// First parameter along the drill (mm from its planned entry) where the drill cylinder is in the slab and its
    /// axis in bone.
    pub start_t_mm: f64,
    /// Last such parameter, mm.
    pub end_t_mm: f64,
    /// Axis points at those parameters, LPS mm.
    pub start_mm: [f64; 3],
    /// See `start_mm`.
    pub end_mm: [f64; 3],
    /// Length of the axis that is both in the slab and in bone, mm (less than `end - start` when a marrow gap lies
    /// between).
    pub in_bone_mm: f64,
}

/// Acute angle between two planes given by their normals, degrees in `0..=90` (the sign of a normal does not
/// matter). Uses `atan2(|n1 x n2|, |n1 . n2|)`, accurate near 0 and 90 degrees alike.
pub fn angle_between_planes_deg(n1: [f64; 3], n2: [f64; 3]) -> Result<f64, MeasureError> {
    let (a, b) = (unit("first plane normal", n1)?, unit("second plane normal", n2)?);
    Ok(norm(cross(a, b)).atan2(dot(a, b).abs()).to_degrees())
}

/// The distance between two cutting planes along the bone from their sections; `None` when a section has no area.
pub fn distance_along_bone(a: &Section, b: &Section) -> Option<PlaneDistance> {
    let (ca, cb) = (a.centroid_mm?, b.centroid_mm?);
    Some(PlaneDistance {
        centroid_distance_mm: norm(sub(cb, ca)),
        first_centroid_to_second_plane_mm: b.plane.signed_distance_mm(ca).abs(),
        second_centroid_to_first_plane_mm: a.plane.signed_distance_mm(cb).abs(),
        angle_deg: norm(cross(a.plane.normal, b.plane.normal))
            .atan2(dot(a.plane.normal, b.plane.normal).abs())
            .to_degrees(),
    })
}

/// Closest points of the segments `p0`-`p1` and `q0`-`q1` (Ericson, Real-Time Collision Detection 5.1.9), exact for
/// parallel, overlapping and zero-length segments.
pub fn segment_segment_distance(p0: [f64; 3], p1: [f64; 3], q0: [f64; 3], q1: [f64; 3]) -> Closest {
    let (d1, d2, r) = (sub(p1, p0), sub(q1, q0), sub(p0, q0));
    let (a, e, f) = (dot(d1, d1), dot(d2, d2), dot(d2, r));
    let clamp = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let (s, t) = if a == 0.0 && e == 0.0 {
        (0.0, 0.0)
    } else if a == 0.0 {
        (0.0, clamp(f / e))
    } else {
        let c = dot(d1, r);
        if e == 0.0 {
            (clamp(-c / a), 0.0)
        } else {
            let b = dot(d1, d2);
            let denom = a * e - b * b;
            let s = if denom > PARALLEL_SIN2 * a * e {
                clamp((b * f - c * e) / denom)
            } else {
                0.0
            };
            let t = (b * s + f) / e;
            if t < 0.0 {
                (clamp(-c / a), 0.0)
            } else if t > 1.0 {
                (clamp((b - c) / a), 1.0)
            } else {
                (s, t)
            }
        }
    };
    let (x, y) = (add(p0, scale(d1, s)), add(q0, scale(d2, t)));
    Closest {
        distance_mm: norm(sub(y, x)),
        first_mm: x,
        second_mm: y,
        first_fraction: s,
        second_fraction: t,
    }
}

/// Closest approach of the segment `p0`-`p1` (a drill axis from entry to tip) to a polyline (a nerve canal's centre
/// line; a single point is allowed), with the clearance `distance - drill_radius_mm - structure_radius_mm`. `None`
/// for an empty polyline.
pub fn segment_polyline_distance(
    p0: [f64; 3],
    p1: [f64; 3],
    polyline_mm: &[[f64; 3]],
    drill_radius_mm: f64,
    structure_radius_mm: f64,
) -> Result<Option<PolylineClosest>, MeasureError> {
    let p0 = finite_point("segment start", p0)?;
    let p1 = finite_point("segment end", p1)?;
    let drill_radius_mm = non_negative("drill radius_mm", drill_radius_mm)?;
    let structure_radius_mm = non_negative("structure radius_mm", structure_radius_mm)?;
    for &q in polyline_mm {
        finite_point("polyline point", q)?;
    }
    let pieces: Vec<([f64; 3], [f64; 3])> = match polyline_mm {
        [] => return Ok(None),
        [only] => vec![(*only, *only)],
        _ => polyline_mm.windows(2).map(|w| (w[0], w[1])).collect(),
    };
    let mut best: Option<(usize, Closest)> = None;
    for (i, &(q0, q1)) in pieces.iter().enumerate() {
        let c = segment_segment_distance(p0, p1, q0, q1);
        if best.is_none_or(|(_, b)| c.distance_mm < b.distance_mm) {
            best = Some((i, c));
        }
    }
    Ok(best.map(|(segment_index, closest)| PolylineClosest {
        closest,
        segment_index,
        clearance_mm: closest.distance_mm - drill_radius_mm - structure_radius_mm,
    }))
}

/// Where the drill of `path` meets a saw blade's slab while its axis is inside bone, between the lead-in start and
/// the tip: the drill cylinder reaches the slab where the axis' signed distance to the cutting plane is within
/// `blade_thickness_mm / 2 + r * sin(angle between axis and normal)` (the cylinder's half extent along the normal;
/// `r` is the path's drill radius, flat drill ends ignored). `None` when they do not meet inside bone.
pub fn drill_crosses_slab(
    path: &DrillPath,
    plane_point_mm: [f64; 3],
    normal: [f64; 3],
    blade_thickness_mm: f64,
) -> Result<Option<SlabCrossing>, MeasureError> {
    let point = finite_point("plane point", plane_point_mm)?;
    let n = unit("plane normal", normal)?;
    let blade = non_negative("blade_thickness_mm", blade_thickness_mm)?;
    let cos = dot(path.direction, n);
    let half = 0.5 * blade + path.radius_mm() * (1.0 - cos * cos).max(0.0).sqrt();
    let s0 = dot(sub(path.planned_entry_mm, point), n);
    let (lo, hi) = if cos == 0.0 {
        if s0.abs() > half {
            return Ok(None);
        }
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        let (a, b) = ((-half - s0) / cos, (half - s0) / cos);
        (a.min(b), a.max(b))
    };
    let (lo, hi) = (lo.max(-path.options.lead_in_mm), hi.min(path.length_mm));
    let mut span: Option<(f64, f64)> = None;
    let mut in_bone_mm = 0.0;
    for iv in &path.intervals {
        let (a, b) = (iv.start_t_mm.max(lo), iv.end_t_mm.min(hi));
        if a <= b {
            in_bone_mm += b - a;
            span = Some(span.map_or((a, b), |(s, e)| (s.min(a), e.max(b))));
        }
    }
    Ok(span.map(|(start_t_mm, end_t_mm)| SlabCrossing {
        start_t_mm,
        end_t_mm,
        start_mm: path.point_at(start_t_mm),
        end_mm: path.point_at(end_t_mm),
        in_bone_mm,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn skew_segments_meet_at_their_common_perpendicular() {
        let c = segment_segment_distance([-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.3, -1.0, 2.0], [0.3, 1.0, 2.0]);
        assert!(close(c.distance_mm, 2.0));
        assert!(close(c.first_mm[0], 0.3) && close(c.second_mm[1], 0.0));
    }

    #[test]
    fn parallel_and_degenerate_segments() {
        // Parallel, overlapping: distance is the offset.
        let c = segment_segment_distance([0.0; 3], [10.0, 0.0, 0.0], [3.0, 1.5, 0.0], [20.0, 1.5, 0.0]);
        assert!(close(c.distance_mm, 1.5), "{c:?}");
        // Parallel, disjoint along the line: end to end.
        let c = segment_segment_distance([0.0; 3], [1.0, 0.0, 0.0], [4.0, 4.0, 0.0], [9.0, 4.0, 0.0]);
        assert!(close(c.distance_mm, 5.0), "{c:?}");
        // Two points.
        let c = segment_segment_distance([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 6.0, 3.0], [4.0, 6.0, 3.0]);
        assert!(close(c.distance_mm, 5.0));
        // A point and a segment.
        let c = segment_segment_distance([0.0, 3.0, 0.0], [0.0, 3.0, 0.0], [-5.0, 0.0, 0.0], [5.0, 0.0, 0.0]);
        assert!(close(c.distance_mm, 3.0) && close(c.second_fraction, 0.5));
        // Nearly parallel (1e-9 rad): still the right distance.
        let c = segment_segment_distance([0.0; 3], [100.0, 0.0, 0.0], [0.0, 2.0, 0.0], [100.0, 2.0 + 1e-7, 0.0]);
        assert!((c.distance_mm - 2.0).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn plane_angles() {
        let a = angle_between_planes_deg([0.0, 0.0, 1.0], [0.0, 0.0, -3.0]).expect("angle");
        assert_eq!(a, 0.0);
        let a = angle_between_planes_deg([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]).expect("angle");
        assert!(close(a, 90.0));
        let a = angle_between_planes_deg([1.0, 0.0, 0.0], [-1.0, 1.0, 0.0]).expect("angle");
        assert!(close(a, 45.0), "{a}");
        assert!(angle_between_planes_deg([0.0; 3], [1.0, 0.0, 0.0]).is_err());
    }

    #[test]
    fn polyline_picks_the_nearest_piece_and_subtracts_radii() {
        let nerve = [[0.0, 10.0, 0.0], [10.0, 10.0, 0.0], [10.0, 3.0, 0.0], [20.0, 3.0, 0.0]];
        let c = segment_polyline_distance([0.0; 3], [20.0, 0.0, 0.0], &nerve, 1.0, 1.5)
            .expect("inputs")
            .expect("closest");
        assert!(close(c.closest.distance_mm, 3.0));
        assert_eq!(c.segment_index, 1, "the first piece at distance 3 wins the tie");
        assert!(close(c.clearance_mm, 0.5));
        assert!(segment_polyline_distance([0.0; 3], [1.0; 3], &[], 1.0, 1.0)
            .expect("inputs")
            .is_none());
        assert!(segment_polyline_distance([0.0; 3], [1.0; 3], &nerve, -1.0, 1.0).is_err());
    }
}
