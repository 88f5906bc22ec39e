//! Simple shapes that show a plan's elements: a cutting plane as a patch clipped to the bone's box, a drill or a
//! structure as cylinders.
//!
//! Why here and not in a front end: the desktop application draws them, and the glTF of the plan
//! (`export::gltf`) carries them as meshes for other viewers, so both take the same shapes from the library. They are
//! for looking at, not for printing: a patch is one-sided and open, a tube is closed cylinders that may overlap at
//! their joints.

use super::{cross, norm, sub, Mesh, MeshError};

/// Two unit vectors perpendicular to `n` (unit) and to each other, `(u, v, n)` right-handed.
fn perpendicular_axes(n: [f64; 3]) -> ([f64; 3], [f64; 3]) {
    let helper = if n[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let u = unit(cross(n, helper));
    (u, cross(n, u))
}

fn unit(a: [f64; 3]) -> [f64; 3] {
    let l = norm(a).max(1e-300);
    a.map(|x| x / l)
}

/// The square of side `size_mm` around `point` in the plane of `normal`, clipped to the box `min..max` (convex
/// polygon in order, counter-clockwise seen from the side `normal` points to; possibly empty).
pub fn plane_patch(point: [f64; 3], normal: [f64; 3], size_mm: f64, min: [f64; 3], max: [f64; 3]) -> Vec<[f64; 3]> {
    let (u, v) = perpendicular_axes(unit(normal));
    let h = size_mm / 2.0;
    let mut poly: Vec<[f64; 3]> = [(-h, -h), (h, -h), (h, h), (-h, h)]
        .iter()
        .map(|&(a, b)| [0, 1, 2].map(|k| point[k] + u[k] * a + v[k] * b))
        .collect();
    // Sutherland-Hodgman against the six faces of the box.
    for axis in 0..3 {
        for (bound, keep_below) in [(max[axis], true), (min[axis], false)] {
            let inside = |p: &[f64; 3]| if keep_below { p[axis] <= bound } else { p[axis] >= bound };
            let mut out = Vec::with_capacity(poly.len() + 2);
            for i in 0..poly.len() {
                let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                if inside(&a) {
                    out.push(a);
                }
                if inside(&a) != inside(&b) {
                    let t = (bound - a[axis]) / (b[axis] - a[axis]);
                    out.push([0, 1, 2].map(|k| a[k] + (b[k] - a[k]) * t));
                }
            }
            poly = out;
            if poly.is_empty() {
                return poly;
            }
        }
    }
    poly
}

/// A convex polygon (in order) as a triangle fan; empty for fewer than three points.
pub fn polygon_mesh(points: &[[f64; 3]]) -> Result<Mesh, MeshError> {
    let n = points.len() as u32;
    let triangles = (1..n.saturating_sub(1)).map(|i| [0, i, i + 1]).collect();
    Mesh::new(if n < 3 { Vec::new() } else { points.to_vec() }, triangles)
}

/// A closed cylinder from `a` to `b` of radius `radius_mm` with `sides` sides (at least 3), outward.
pub fn cylinder(a: [f64; 3], b: [f64; 3], radius_mm: f64, sides: u32) -> Result<Mesh, MeshError> {
    let sides = sides.max(3);
    let (u, v) = perpendicular_axes(unit(sub(b, a)));
    let mut positions = Vec::with_capacity(2 * sides as usize + 2);
    for s in 0..sides {
        let ang = f64::from(s) / f64::from(sides) * std::f64::consts::TAU;
        let r = [0, 1, 2].map(|k| (u[k] * ang.cos() + v[k] * ang.sin()) * radius_mm);
        positions.push([0, 1, 2].map(|k| a[k] + r[k]));
        positions.push([0, 1, 2].map(|k| b[k] + r[k]));
    }
    let (ca, cb) = (2 * sides, 2 * sides + 1);
    positions.push(a);
    positions.push(b);
    let mut triangles = Vec::with_capacity(4 * sides as usize);
    for s in 0..sides {
        let (i0, i1) = (2 * s, 2 * ((s + 1) % sides));
        // (u, v, axis) is right-handed, so the ring runs counter-clockwise seen from `b`.
        triangles.push([i0, i1, i0 + 1]);
        triangles.push([i1, i1 + 1, i0 + 1]);
        triangles.push([ca, i1, i0]);
        triangles.push([cb, i0 + 1, i1 + 1]);
    }
    Mesh::new(positions, triangles)
}

/// A polyline as closed cylinders of radius `radius_mm`, one per segment (zero-length segments skipped).
pub fn tube(points: &[[f64; 3]], radius_mm: f64, sides: u32) -> Result<Mesh, MeshError> {
    let mut out = Mesh::new(Vec::new(), Vec::new())?;
    for w in points.windows(2) {
        if norm(sub(w[1], w[0])) > 1e-9 {
            out.merge(&cylinder(w[0], w[1], radius_mm, sides)?)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::check::MeshReport;

    #[test]
    fn a_cylinder_is_closed_outward_with_its_volume() {
        let m = cylinder([1.0, 2.0, 3.0], [1.0, 2.0, 13.0], 2.0, 64).unwrap();
        let r = MeshReport::new(&m);
        assert!(r.is_valid(), "{r}");
        // A 64-gon's area is 64/2 sin(2 pi/64) r^2.
        let expected = 32.0 * (std::f64::consts::TAU / 64.0).sin() * 4.0 * 10.0;
        assert!(
            (m.signed_volume_mm3() - expected).abs() < 1e-9,
            "{}",
            m.signed_volume_mm3()
        );
    }

    #[test]
    fn a_patch_is_clipped_to_the_box_and_a_tube_has_one_cylinder_per_segment() {
        let poly = plane_patch([0.0; 3], [0.0, 0.0, 1.0], 100.0, [-10.0; 3], [10.0; 3]);
        assert_eq!(poly.len(), 4);
        let area = polygon_mesh(&poly).unwrap().area_mm2();
        assert!((area - 400.0).abs() < 1e-9, "{area}");
        assert!(plane_patch([0.0, 0.0, 50.0], [0.0, 0.0, 1.0], 100.0, [-10.0; 3], [10.0; 3]).is_empty());
        let t = tube(
            &[[0.0; 3], [10.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 5.0, 0.0]],
            1.0,
            8,
        )
        .unwrap();
        assert_eq!(t.connected_components().count, 2);
    }
}
