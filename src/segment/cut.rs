//! Cutting a mask with patient-space shapes: crop to a box, clear a half-space, clear a box ("scissors").
//!
//! Why in patient millimetres: the planner picks these shapes on the 3D view or from landmarks, which live in
//! patient LPS mm, and a recipe stored in a plan must stay valid if the volume is resampled. Why the mask keeps
//! its geometry: the cut mask must stay aligned voxel for voxel with the HU volume and with other masks.
//!
//! A voxel is judged by its centre. Along a row the centre moves linearly with `i`, so each row reduces to one
//! interval of `i` computed in closed form (no per-voxel transform), parallel over slices. Boxes are closed and
//! their faces are widened by [`FACE_TOLERANCE_MM`], so a centre lying exactly on a face (as happens with box
//! corners picked on voxel centres) counts as inside despite rounding; likewise a centre on a cut plane is kept.
//! The cuts only clear voxels, so they work in place.

use super::error::SegmentError;
use super::mask::Mask;
use crate::grid::GridGeometry;
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;
use std::ops::Range;

/// Distance (mm) by which box faces and cut planes are moved outwards so centres on them count as inside / kept.
pub const FACE_TOLERANCE_MM: f64 = 1e-6;

/// Clears every voxel whose centre lies outside the patient-space box `min_mm ..= max_mm` (axis-aligned in LPS).
pub fn crop_to_box_mm(mask: &mut Mask, min_mm: Point3<f64>, max_mm: Point3<f64>) -> Result<(), SegmentError> {
    check_box(min_mm, max_mm)?;
    for_each_row(
        mask,
        |g, j, k| box_range(g, j, k, min_mm, max_mm),
        |row, inside| {
            row[..inside.start].fill(0);
            row[inside.end..].fill(0);
        },
    );
    Ok(())
}

/// Clears every voxel whose centre lies inside the patient-space box `min_mm ..= max_mm` (axis-aligned in LPS):
/// scissors, e.g. to separate the mandible from the maxilla where the teeth touch.
pub fn cut_box_mm(mask: &mut Mask, min_mm: Point3<f64>, max_mm: Point3<f64>) -> Result<(), SegmentError> {
    check_box(min_mm, max_mm)?;
    for_each_row(
        mask,
        |g, j, k| box_range(g, j, k, min_mm, max_mm),
        |row, inside| {
            row[inside].fill(0);
        },
    );
    Ok(())
}

/// Clears every voxel whose centre lies strictly on the positive side of the plane through `point_mm` with
/// normal `normal` (patient LPS; need not be unit length), i.e. where `(c - point) . normal > 0`.
pub fn cut_plane(mask: &mut Mask, point_mm: Point3<f64>, normal: Vector3<f64>) -> Result<(), SegmentError> {
    let norm = normal.norm();
    if !point_mm.coords.iter().all(|v| v.is_finite()) || !norm.is_finite() || norm == 0.0 {
        return Err(SegmentError::InvalidPlane {
            point_mm: point_mm.coords.into(),
            normal: normal.into(),
        });
    }
    let n = normal / norm;
    for_each_row(
        mask,
        |g, j, k| {
            let base = g.to_patient([0.0, j as f64, k as f64]);
            let step = g.to_patient([1.0, j as f64, k as f64]) - base;
            // Signed distance of centre i: s0 + i * ds; kept where it is <= tolerance.
            let s0 = (base - point_mm).dot(&n);
            let ds = step.dot(&n);
            let (lo, hi) = solve_le(s0, ds, FACE_TOLERANCE_MM);
            index_range(lo, hi, g.dims[0])
        },
        |row, kept| {
            row[..kept.start].fill(0);
            row[kept.end..].fill(0);
        },
    );
    Ok(())
}

fn check_box(min_mm: Point3<f64>, max_mm: Point3<f64>) -> Result<(), SegmentError> {
    let ok = (0..3).all(|a| min_mm[a].is_finite() && max_mm[a].is_finite() && min_mm[a] <= max_mm[a]);
    if ok {
        Ok(())
    } else {
        Err(SegmentError::InvalidBox {
            min_mm: min_mm.coords.into(),
            max_mm: max_mm.coords.into(),
        })
    }
}

/// Runs `apply(row, range_of(geometry, j, k))` on every row, in parallel over slices.
fn for_each_row(
    mask: &mut Mask,
    range_of: impl Fn(&GridGeometry, usize, usize) -> Range<usize> + Sync,
    apply: impl Fn(&mut [u8], Range<usize>) + Sync,
) {
    let g = mask.geometry().clone();
    let [nx, ny, _] = g.dims;
    if nx == 0 || ny == 0 {
        return;
    }
    mask.bytes_mut()
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slice)| {
            for (j, row) in slice.chunks_mut(nx).enumerate() {
                apply(row, range_of(&g, j, k));
            }
        });
}

/// Columns `i` of row `(j, k)` whose centre lies in the closed box.
fn box_range(g: &GridGeometry, j: usize, k: usize, min_mm: Point3<f64>, max_mm: Point3<f64>) -> Range<usize> {
    let base = g.to_patient([0.0, j as f64, k as f64]);
    let step = g.to_patient([1.0, j as f64, k as f64]) - base;
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for a in 0..3 {
        // min - tol <= base + i * step <= max + tol
        let (l1, h1) = solve_le(base[a], step[a], max_mm[a] + FACE_TOLERANCE_MM);
        let (l2, h2) = solve_le(-base[a], -step[a], -(min_mm[a] - FACE_TOLERANCE_MM));
        lo = lo.max(l1).max(l2);
        hi = hi.min(h1).min(h2);
    }
    index_range(lo, hi, g.dims[0])
}

/// The interval of real `i` with `c0 + c1 * i <= bound` (empty as `(inf, -inf)`).
fn solve_le(c0: f64, c1: f64, bound: f64) -> (f64, f64) {
    if c1 > 0.0 {
        (f64::NEG_INFINITY, (bound - c0) / c1)
    } else if c1 < 0.0 {
        ((bound - c0) / c1, f64::INFINITY)
    } else if c0 <= bound {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        (f64::INFINITY, f64::NEG_INFINITY)
    }
}

/// Integer indices `0..n` lying in the real interval `[lo, hi]`.
fn index_range(lo: f64, hi: f64, n: usize) -> Range<usize> {
    let nf = n as f64;
    let start = if lo.is_nan() || lo >= nf {
        n
    } else if lo <= 0.0 {
        0
    } else {
        (lo.ceil() as usize).min(n)
    };
    let end = if hi.is_nan() || hi < 0.0 {
        0
    } else if hi >= nf - 1.0 {
        n
    } else {
        hi.floor() as usize + 1
    };
    if start < end {
        start..end
    } else {
        0..0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn tilted() -> GridGeometry {
        let (c, s) = (23f64.to_radians().cos(), 23f64.to_radians().sin());
        let (c2, s2) = (11f64.to_radians().cos(), 11f64.to_radians().sin());
        // Rotation about z then about x: orthonormal, right-handed.
        let ax = [c, s, 0.0];
        let ay = [-s * c2, c * c2, s2];
        let az = [s * s2, -c * s2, c2];
        GridGeometry {
            dims: [21, 17, 13],
            spacing_mm: [0.45, 0.45, 1.1],
            origin_mm: [-4.0, 3.0, 20.0],
            axes: [ax, ay, az],
        }
    }

    fn centre(g: &GridGeometry, v: [usize; 3]) -> Point3<f64> {
        g.to_patient([v[0] as f64, v[1] as f64, v[2] as f64])
    }

    #[test]
    fn crop_and_cut_box_match_per_voxel_tests() -> TestResult {
        let g = tilted();
        let full = Mask::full(g.clone())?;
        let (lo, hi) = (Point3::new(-2.3, 1.1, 19.7), Point3::new(3.9, 6.2, 27.05));
        let inside = |p: Point3<f64>| (0..3).all(|a| lo[a] <= p[a] && p[a] <= hi[a]);
        let mut cropped = full.clone();
        crop_to_box_mm(&mut cropped, lo, hi)?;
        let expected = Mask::from_fn(g.clone(), |v| inside(centre(&g, v)))?;
        assert!(expected.count() > 50 && expected.count() < g.len() / 2);
        assert_eq!(cropped, expected);
        assert_eq!(cropped.geometry(), &g, "geometry is kept");

        let mut cut = full.clone();
        cut_box_mm(&mut cut, lo, hi)?;
        let mut expected_cut = expected.clone();
        expected_cut.invert();
        assert_eq!(cut, expected_cut);
        Ok(())
    }

    #[test]
    fn box_faces_on_voxel_centres_are_inclusive() -> TestResult {
        let g = GridGeometry::axis_aligned([10, 10, 10], [0.3, 0.3, 0.7], [1.0, 2.0, 3.0]);
        let mut m = Mask::full(g.clone())?;
        // Faces exactly through centres of voxels 2 and 5 on every axis (0.3 is inexact in binary).
        crop_to_box_mm(&mut m, centre(&g, [2, 2, 2]), centre(&g, [5, 5, 5]))?;
        assert_eq!(m.count(), 4 * 4 * 4);
        assert!(m.get(2, 2, 2) && m.get(5, 5, 5) && !m.get(6, 5, 5) && !m.get(1, 2, 2));
        Ok(())
    }

    #[test]
    fn plane_clears_the_positive_side() -> TestResult {
        let g = tilted();
        let full = Mask::full(g.clone())?;
        let point = Point3::new(0.5, 4.0, 24.0);
        let normal = Vector3::new(0.3, -1.0, 0.6);
        let mut cut = full.clone();
        cut_plane(&mut cut, point, normal * 7.0)?;
        let expected = Mask::from_fn(g.clone(), |v| (centre(&g, v) - point).dot(&normal) <= 0.0)?;
        assert!(expected.count() > 100 && expected.count() < g.len() - 100);
        assert_eq!(cut, expected);

        // A plane through voxel centres keeps them.
        let ga = GridGeometry::axis_aligned([8, 4, 4], [0.3, 1.0, 1.0], [0.0; 3]);
        let mut m = Mask::full(ga.clone())?;
        cut_plane(&mut m, centre(&ga, [3, 0, 0]), Vector3::new(1.0, 0.0, 0.0))?;
        assert_eq!(m.count(), 4 * 4 * 4);
        assert!(m.get(3, 1, 1) && !m.get(4, 1, 1));
        Ok(())
    }

    #[test]
    fn invalid_shapes_are_refused() -> TestResult {
        let g = tilted();
        let mut m = Mask::full(g)?;
        let r = crop_to_box_mm(&mut m, Point3::new(1.0, 0.0, 0.0), Point3::new(0.0, 1.0, 1.0));
        assert!(matches!(r, Err(SegmentError::InvalidBox { .. })));
        let r = cut_box_mm(&mut m, Point3::new(f64::NAN, 0.0, 0.0), Point3::new(1.0, 1.0, 1.0));
        assert!(matches!(r, Err(SegmentError::InvalidBox { .. })));
        let r = cut_plane(&mut m, Point3::origin(), Vector3::zeros());
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("normal [0.0, 0.0, 0.0]"), "{msg}");
        Ok(())
    }

    #[test]
    fn index_range_edges() {
        assert_eq!(index_range(-3.0, 100.0, 10), 0..10);
        assert_eq!(index_range(2.0, 5.0, 10), 2..6);
        assert_eq!(index_range(2.1, 4.9, 10), 3..5);
        assert_eq!(index_range(10.0, 20.0, 10), 0..0);
        assert_eq!(index_range(-5.0, -0.5, 10), 0..0);
        assert_eq!(index_range(f64::INFINITY, f64::NEG_INFINITY, 10), 0..0);
        assert_eq!(index_range(9.0, 9.0, 10), 9..10);
    }
}
