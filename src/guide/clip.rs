//! The solid between two height fields, cut exactly to a footprint polygon without a boolean.
//!
//! Why: intersecting the rectangle's solid with the footprint prism in the boolean engine costs most of a second
//! for a pad, and the cut is simple: every grid triangle is clipped by the convex pieces (ears) of the polygon, the
//! pieces share their cut points (welded), heights are interpolated inside the grid triangle they came from (so the
//! surfaces are the same piecewise-linear surfaces as the uncut solid), and walls close the outline. The result is
//! checked by the caller; if a degenerate configuration (a grid vertex exactly on the outline) ever left it open,
//! the caller falls back to the boolean.

use std::collections::HashMap;

use nalgebra::Vector3;

use super::footprint::Footprint;
use super::heightfield::{GuideFrame, HeightGrid};
use crate::mesh::Mesh;

/// Points of the 2D triangulation closer than this (mm) are one point (cut points computed from different pieces).
const WELD_MM: f64 = 1e-7;
/// Pieces with less area than this (mm^2) are dropped (they come from a vertex exactly on a line).
const MIN_PIECE_AREA_MM2: f64 = 1e-12;

/// The solid between `bottom` and `top` (same grid, top above bottom) inside `footprint`, patient coordinates.
pub fn clipped_solid(bottom: &HeightGrid, top: &HeightGrid, frame: &GuideFrame, footprint: &Footprint) -> Mesh {
    let h = top.spacing_mm;
    let ears = footprint.ears();
    let b = footprint.bounds_mm();
    let i_lo = (((b[0] - top.u0_mm) / h).floor().max(0.0) as usize).min(top.nu - 1);
    let j_lo = (((b[1] - top.v0_mm) / h).floor().max(0.0) as usize).min(top.nv - 1);
    let i_hi = (((b[2] - top.u0_mm) / h).ceil().max(0.0) as usize).min(top.nu - 1);
    let j_hi = (((b[3] - top.v0_mm) / h).ceil().max(0.0) as usize).min(top.nv - 1);

    let mut welder = Welder::default();
    // Per 2D vertex: (top w, bottom w).
    let mut heights: Vec<(f64, f64)> = Vec::new();
    let mut tris: Vec<[u32; 3]> = Vec::new();
    for j in j_lo..j_hi {
        for i in i_lo..i_hi {
            let corner = |di: usize, dj: usize| {
                let (u, v) = top.uv(i + di, j + dj);
                ([u, v], top.at(i + di, j + dj), bottom.at(i + di, j + dj))
            };
            let c = [corner(0, 0), corner(1, 0), corner(1, 1), corner(0, 1)];
            // One 2D triangulation for both sheets: the shorter diagonal of the contact surface.
            let split_a = (c[0].2 - c[2].2).abs() <= (c[1].2 - c[3].2).abs();
            let grid_tris = if split_a {
                [[0, 1, 2], [0, 2, 3]]
            } else {
                [[0, 1, 3], [1, 2, 3]]
            };
            for gt in grid_tris {
                let t = [c[gt[0]], c[gt[1]], c[gt[2]]];
                let tri2 = [t[0].0, t[1].0, t[2].0];
                for ear in &ears {
                    let piece = clip_convex(&tri2, ear);
                    if piece.len() < 3 {
                        continue;
                    }
                    let ids: Vec<u32> = piece
                        .iter()
                        .map(|p| {
                            let (id, new) = welder.id(*p);
                            if new {
                                let l = barycentric(&tri2, p);
                                heights.push((
                                    l[0] * t[0].1 + l[1] * t[1].1 + l[2] * t[2].1,
                                    l[0] * t[0].2 + l[1] * t[1].2 + l[2] * t[2].2,
                                ));
                            }
                            id
                        })
                        .collect();
                    for k in 1..ids.len() - 1 {
                        let (a, b2, c2) = (ids[0], ids[k], ids[k + 1]);
                        if a == b2 || b2 == c2 || a == c2 {
                            continue;
                        }
                        let (pa, pb, pc) = (
                            welder.points[a as usize],
                            welder.points[b2 as usize],
                            welder.points[c2 as usize],
                        );
                        let area = 0.5 * ((pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0]));
                        if area > MIN_PIECE_AREA_MM2 {
                            tris.push([a, b2, c2]);
                        }
                    }
                }
            }
        }
    }
    let n = welder.points.len() as u32;
    let mut positions = Vec::with_capacity(2 * n as usize);
    for sheet in 0..2 {
        for (p, (wt, wb)) in welder.points.iter().zip(&heights) {
            let w = if sheet == 0 { *wt } else { *wb };
            positions.push(frame.patient_from_frame(&Vector3::new(p[0], p[1], w)).coords.into());
        }
    }
    let mut triangles = Vec::with_capacity(2 * tris.len() + 64);
    // Directed edges of the top sheet; a boundary edge has no reverse twin.
    let mut directed: HashMap<(u32, u32), usize> = HashMap::with_capacity(3 * tris.len());
    for t in &tris {
        triangles.push(*t);
        triangles.push([n + t[0], n + t[2], n + t[1]]);
        for k in 0..3 {
            *directed.entry((t[k], t[(k + 1) % 3])).or_insert(0) += 1;
        }
    }
    // Walls in the order of the triangles (deterministic, not the hash map's order).
    for t in &tris {
        for k in 0..3 {
            let (p, q) = (t[k], t[(k + 1) % 3]);
            if !directed.contains_key(&(q, p)) {
                triangles.push([p, n + p, n + q]);
                triangles.push([p, n + q, q]);
            }
        }
    }
    Mesh { positions, triangles }
}

/// Sutherland-Hodgman: the triangle `t` clipped by the convex counter-clockwise triangle `ear`.
fn clip_convex(t: &[[f64; 2]; 3], ear: &[[f64; 2]; 3]) -> Vec<[f64; 2]> {
    let mut poly: Vec<[f64; 2]> = t.to_vec();
    for k in 0..3 {
        let (a, b) = (ear[k], ear[(k + 1) % 3]);
        let side = |p: &[f64; 2]| (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        let mut out = Vec::with_capacity(poly.len() + 2);
        for m in 0..poly.len() {
            let (p, q) = (poly[m], poly[(m + 1) % poly.len()]);
            let (sp, sq) = (side(&p), side(&q));
            if sp >= 0.0 {
                out.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let s = sp / (sp - sq);
                out.push([p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])]);
            }
        }
        poly = out;
        if poly.len() < 3 {
            return Vec::new();
        }
    }
    poly
}

fn barycentric(t: &[[f64; 2]; 3], p: &[f64; 2]) -> [f64; 3] {
    let d = (t[1][0] - t[0][0]) * (t[2][1] - t[0][1]) - (t[2][0] - t[0][0]) * (t[1][1] - t[0][1]);
    let l1 = ((p[0] - t[0][0]) * (t[2][1] - t[0][1]) - (t[2][0] - t[0][0]) * (p[1] - t[0][1])) / d;
    let l2 = ((t[1][0] - t[0][0]) * (p[1] - t[0][1]) - (p[0] - t[0][0]) * (t[1][1] - t[0][1])) / d;
    [1.0 - l1 - l2, l1, l2]
}

/// Merges 2D points within [`WELD_MM`] (bucketed; neighbours of the bucket are searched too).
#[derive(Default)]
struct Welder {
    points: Vec<[f64; 2]>,
    buckets: HashMap<(i64, i64), Vec<u32>>,
}

impl Welder {
    fn id(&mut self, p: [f64; 2]) -> (u32, bool) {
        let key = (
            (p[0] / (4.0 * WELD_MM)).floor() as i64,
            (p[1] / (4.0 * WELD_MM)).floor() as i64,
        );
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(list) = self.buckets.get(&(key.0 + dx, key.1 + dy)) {
                    for &id in list {
                        let q = self.points[id as usize];
                        if (q[0] - p[0]).abs() <= WELD_MM && (q[1] - p[1]).abs() <= WELD_MM {
                            return (id, false);
                        }
                    }
                }
            }
        }
        let id = self.points.len() as u32;
        self.points.push(p);
        self.buckets.entry(key).or_default().push(id);
        (id, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshReport;
    use nalgebra::Point3;

    /// The solid between the fields cut to the outline `uv`, checked valid, and its footprint.
    fn cut(bottom: &HeightGrid, top: &HeightGrid, frame: &GuideFrame, uv: &[[f64; 2]]) -> (Footprint, Mesh) {
        let outline: Vec<[f64; 3]> = uv
            .iter()
            .map(|p| frame.patient_from_frame(&Vector3::new(p[0], p[1], 0.0)).coords.into())
            .collect();
        let fp = Footprint::new(frame, &outline).expect("footprint");
        let solid = clipped_solid(bottom, top, frame, &fp);
        let report = MeshReport::new(&solid);
        assert!(report.is_valid(), "{report}");
        (fp, solid)
    }

    #[test]
    fn a_clipped_solid_is_closed_and_has_the_polygon_times_height_volume() {
        let frame = GuideFrame::new(Point3::new(1.0, 2.0, 3.0), Vector3::new(0.1, -0.2, -1.0)).expect("frame");
        let mut bottom = HeightGrid::empty(-5.0, -5.0, 0.25, 41, 41);
        for j in 0..41 {
            for i in 0..41 {
                bottom.w_mm[j * 41 + i] = (i as f64 * 0.13).sin() + (j as f64 * 0.07).cos();
            }
        }
        let top = HeightGrid {
            w_mm: bottom.w_mm.iter().map(|w| w + 1.5).collect(),
            ..bottom.clone()
        };
        // A non-convex outline with vertices off the grid.
        let uv = [[-3.1, -2.9], [3.3, -3.05], [3.2, 3.1], [0.37, 0.41], [-2.9, 3.3]];
        let (fp, solid) = cut(&bottom, &top, &frame, &uv);
        // Constant thickness 1.5 along w: volume = area x 1.5 exactly (up to rounding).
        assert!(
            (solid.signed_volume_mm3() - 1.5 * fp.area_mm2()).abs() < 1e-6,
            "{} vs {}",
            solid.signed_volume_mm3(),
            1.5 * fp.area_mm2()
        );
    }

    /// A long strip outline (a proposed footprint of the demo's drill guide, seen along its seating direction) over
    /// a steep contact surface: the first-ear rule fanned it into slivers 60 mm long, and the cut pad crossed itself.
    #[test]
    fn a_long_strip_outline_over_steep_bone_gives_a_pad_that_does_not_cross_itself() {
        let frame = GuideFrame::new(Point3::new(0.0, 0.0, 0.0), Vector3::new(0.0, 0.0, -1.0)).expect("frame");
        // Full precision: three of its points are collinear up to the last bit (-21.9, 3.2), (-6.9, -4.3), (-4.9, -5.3).
        let uv = [
            [-22.444444444444443, -2.3333333333333326],
            [-21.444444444444454, -3.8333333333333326],
            [-16.944444444444443, -4.833333333333333],
            [-14.444444444444443, -3.833333333333333],
            [-13.944444444444443, -4.833333333333333],
            [-6.9444444444444455, -4.333333333333332],
            [-4.944444444444443, -5.333333333333331],
            [13.055555555555557, -4.333333333333332],
            [46.05555555555556, -4.833333333333332],
            [46.55555555555556, 3.6666666666666665],
            [42.05555555555556, 5.166666666666666],
            [40.55555555555556, 4.166666666666666],
            [-4.944444444444441, 5.166666666666666],
            [-6.944444444444443, 4.166666666666665],
            [-16.944444444444443, 4.666666666666666],
            [-17.444444444444446, 3.6666666666666665],
            [-18.944444444444443, 4.666666666666665],
            [-21.94444444444445, 3.1666666666666665],
        ];
        let (nu, nv) = (360, 80);
        let mut bottom = HeightGrid::empty(-25.0, -8.0, 0.2, nu, nv);
        for j in 0..nv {
            for i in 0..nu {
                let (u, v) = bottom.uv(i, j);
                // A bone that falls away steeply across the strip, with ridges along it.
                bottom.w_mm[j * nu + i] = -0.4 * v * v.abs() + 0.8 * (0.7 * u).sin();
            }
        }
        let top = HeightGrid {
            w_mm: bottom.w_mm.iter().map(|w| w + 2.0).collect(),
            ..bottom.clone()
        };
        let (fp, solid) = cut(&bottom, &top, &frame, &uv);
        // `cut` found it valid: closed, and crossing itself nowhere.
        assert!((solid.signed_volume_mm3() - 2.0 * fp.area_mm2()).abs() < 1e-6);
    }
}
