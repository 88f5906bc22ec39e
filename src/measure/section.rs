//! Cross-sections of the bone with a cutting plane: closed contour loops, their lengths, signed areas and the area
//! centroid.
//!
//! Each vertex is classified once, above (signed distance `>= 0`, so a vertex exactly on the plane counts as above)
//! or below; a triangle with both classes gives one segment between the points of its two crossed edges, each point
//! computed from the edge's vertices in index order so both triangles of the edge get the identical point. The
//! segment runs from the edge going above-to-below to the edge going below-to-above (triangle order), which is the
//! direction `plane normal x outward normal`: seen from the normal's side, bone lies on the left, so outer loops run
//! counter-clockwise (positive area) and holes clockwise. On a closed manifold mesh every crossed edge starts exactly
//! one segment and ends exactly one, so every loop closes, whatever touches the plane exactly.

use serde::Serialize;

use super::query::BoneQuery;
use super::{finite_point, unit, MeasureError, Plane};
use crate::mesh::{add, cross, dot, norm, scale, sub};

/// One closed (or, on an open mesh, open) contour of a section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contour {
    /// The points, LPS mm, in order; the closing segment from the last back to the first is implied.
    pub points_mm: Vec<[f64; 3]>,
    /// False only when the mesh is open there (a boundary edge ended the chain).
    pub closed: bool,
    /// Length of the contour, mm (with the closing segment when closed).
    pub perimeter_mm: f64,
    /// Enclosed area, mm^2: positive for an outer boundary of bone, negative for a hole (marrow, foramen), seen from
    /// the plane normal's side.
    pub signed_area_mm2: f64,
}

/// A cross-section of the bone with a plane.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    /// The cutting plane (unit normal).
    pub plane: Plane,
    /// The contours, largest absolute area first.
    pub loops: Vec<Contour>,
    /// Total length of all contours, mm (the saw's path length in bone, twice for a hollow piece's two walls).
    pub total_length_mm: f64,
    /// Net bone area of the section, mm^2 (outer loops minus holes).
    pub net_area_mm2: f64,
    /// Centroid of the net bone area, LPS mm; `None` when the plane misses the bone (no area).
    pub centroid_mm: Option<[f64; 3]>,
    /// Number of contours that could not be closed (0 on a closed mesh).
    pub open_loops: usize,
}

impl Section {
    /// True when the plane does not cut the bone.
    pub fn is_empty(&self) -> bool {
        self.loops.is_empty()
    }
}

/// The piece of bone a cut is made on, out of a section that may cross several (see [`Section::piece_at`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Piece {
    /// The section restricted to the piece: its outer contour and the holes inside it.
    pub section: Section,
    /// Outer contours of other bone the infinite plane also crosses (0 when it crosses one piece only).
    pub other_pieces: usize,
    /// The centroid of the nearest other piece's contour, LPS mm (for the finding's place).
    pub nearest_other_mm: Option<[f64; 3]>,
}

impl Section {
    /// The piece of bone at `point_mm` (the plane's point): the outer contour that contains the point's projection
    /// onto the plane (the innermost, when contours nest), or the nearest one when none does, together with every
    /// outer contour within [`PIECE_GAP_MM`] of it, one from the next, and the holes inside them; and how many other
    /// pieces the plane crosses.
    ///
    /// Why: a saw cuts the bone where it is put, not everything the infinite plane meets. A plane through the right
    /// body of a U-shaped mandible also crosses the left body; measuring both (two loops, a centroid near the
    /// midline) gave resection lengths between points in no bone at all. A Le Fort I cut, on the other hand, crosses
    /// the thin walls of the maxilla on both sides of the nose as many contours up to 2 cm apart, and all of them are
    /// its cut.
    pub fn piece_at(&self, point_mm: [f64; 3]) -> Piece {
        self.piece_within(point_mm, PIECE_GAP_MM)
    }

    /// [`Section::piece_at`] with contours `gap_mm` apart or closer taken as one piece (0: only the contour itself,
    /// with its holes: one bone beside another, such as the fibula beside the tibia).
    pub fn piece_within(&self, point_mm: [f64; 3], gap_mm: f64) -> Piece {
        let origin = self.plane.point_mm;
        let (u, v) = plane_basis(self.plane.normal);
        let local = |p: [f64; 3]| {
            let d = sub(p, origin);
            [dot(d, u), dot(d, v)]
        };
        let flat: Vec<Vec<[f64; 2]>> = self
            .loops
            .iter()
            .map(|l| l.points_mm.iter().map(|&p| local(p)).collect())
            .collect();
        let outer: Vec<usize> = (0..self.loops.len())
            .filter(|&i| !self.loops[i].closed || self.loops[i].signed_area_mm2 > 0.0)
            .collect();
        let at = local(point_mm);
        // Inside an outer contour: the smallest that holds the point; else the nearest by distance.
        let chosen = outer
            .iter()
            .copied()
            .filter(|&i| self.loops[i].closed && inside(&flat[i], at))
            .min_by(|&a, &b| {
                self.loops[a]
                    .signed_area_mm2
                    .total_cmp(&self.loops[b].signed_area_mm2)
                    .then(a.cmp(&b))
            })
            .or_else(|| {
                outer.iter().copied().min_by(|&a, &b| {
                    distance_to(&flat[a], self.loops[a].closed, at)
                        .total_cmp(&distance_to(&flat[b], self.loops[b].closed, at))
                        .then(a.cmp(&b))
                })
            });
        let Some(first) = chosen else {
            return Piece {
                section: self.clone(),
                other_pieces: 0,
                nearest_other_mm: None,
            };
        };
        // A hole belongs to the smallest outer contour around it.
        let owner = |hole: usize| {
            outer
                .iter()
                .copied()
                .filter(|&o| self.loops[o].closed && inside(&flat[o], flat[hole][0]))
                .min_by(|&a, &b| {
                    self.loops[a]
                        .signed_area_mm2
                        .total_cmp(&self.loops[b].signed_area_mm2)
                        .then(a.cmp(&b))
                })
        };
        // Single linkage: outer contours closer than the gap, one to the next, are one piece.
        let mut piece = vec![first];
        let mut k = 0;
        while k < piece.len() {
            let a = piece[k];
            for &b in &outer {
                if !piece.contains(&b) && polyline_gap(&flat[a], &flat[b]) <= gap_mm {
                    piece.push(b);
                }
            }
            k += 1;
        }
        let keep: Vec<usize> = (0..self.loops.len())
            .filter(|&i| {
                piece.contains(&i)
                    || (!outer.contains(&i) && !flat[i].is_empty() && owner(i).is_some_and(|o| piece.contains(&o)))
            })
            .collect();
        let loops: Vec<Contour> = keep.iter().map(|&i| self.loops[i].clone()).collect();
        let total_length_mm = loops.iter().map(|l| l.perimeter_mm).sum();
        let (net_area_mm2, moment) = loops.iter().filter(|l| l.closed).fold((0.0, [0.0; 2]), |(area, m), l| {
            let (a, lm) = area_moment(&l.points_mm, origin, u, v);
            (area + a, [m[0] + lm[0], m[1] + lm[1]])
        });
        let centroid_mm = (net_area_mm2 != 0.0 && net_area_mm2.is_finite()).then(|| {
            let (cu, cv) = (moment[0] / net_area_mm2, moment[1] / net_area_mm2);
            add(origin, add(scale(u, cu), scale(v, cv)))
        });
        let others: Vec<usize> = outer.iter().copied().filter(|&i| !piece.contains(&i)).collect();
        // Count the other pieces: the same linkage among the contours left.
        let mut other_pieces = 0;
        let mut seen: Vec<usize> = Vec::new();
        for &start in &others {
            if seen.contains(&start) {
                continue;
            }
            other_pieces += 1;
            let mut group = vec![start];
            let mut k = 0;
            while k < group.len() {
                let a = group[k];
                for &b in &others {
                    if !group.contains(&b) && polyline_gap(&flat[a], &flat[b]) <= gap_mm {
                        group.push(b);
                    }
                }
                k += 1;
            }
            seen.extend(group);
        }
        let contour_centre = |l: &Contour| {
            let n = l.points_mm.len().max(1) as f64;
            let sum = l.points_mm.iter().fold([0.0; 3], |s, &p| add(s, p));
            scale(sum, 1.0 / n)
        };
        let nearest_other_mm = others
            .iter()
            .copied()
            .min_by(|&a, &b| {
                distance_to(&flat[a], self.loops[a].closed, at)
                    .total_cmp(&distance_to(&flat[b], self.loops[b].closed, at))
                    .then(a.cmp(&b))
            })
            .map(|i| contour_centre(&self.loops[i]));
        Piece {
            section: Section {
                plane: self.plane,
                open_loops: loops.iter().filter(|l| !l.closed).count(),
                loops,
                total_length_mm,
                net_area_mm2,
                centroid_mm,
            },
            other_pieces,
            nearest_other_mm,
        }
    }
}

/// Outer contours of a section closer than this (mm), one to the next, belong to one piece of bone
/// ([`Section::piece_at`]). A Le Fort I cut crosses the maxilla's walls on both sides of the nasal cavity, whose
/// aperture is about 2.5 cm wide; a cut through one body of the mandible meets the other side 6 cm and more away
/// (`mandible-0014`).
pub const PIECE_GAP_MM: f64 = 25.0;

/// Smallest distance between the vertices of two polylines (within half an edge of the true gap; the contours'
/// edges are shorter than a voxel), with a bounding-box test first.
fn polyline_gap(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let bounds = |p: &[[f64; 2]]| {
        p.iter().fold(
            [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY],
            |m, q| [m[0].min(q[0]), m[1].min(q[1]), m[2].max(q[0]), m[3].max(q[1])],
        )
    };
    let (ba, bb) = (bounds(a), bounds(b));
    let dx = (ba[0] - bb[2]).max(bb[0] - ba[2]).max(0.0);
    let dy = (ba[1] - bb[3]).max(bb[1] - ba[3]).max(0.0);
    let box_gap = (dx * dx + dy * dy).sqrt();
    if box_gap > PIECE_GAP_MM {
        return box_gap;
    }
    let mut best = f64::INFINITY;
    for p in a {
        for q in b {
            best = best.min((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2));
        }
    }
    best.sqrt()
}

/// Whether `p` lies inside the closed polygon `poly` (even-odd rule).
fn inside(poly: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Distance from `p` to the polyline `poly` (closed: with the segment back to the start).
fn distance_to(poly: &[[f64; 2]], closed: bool, p: [f64; 2]) -> f64 {
    let n = poly.len();
    if n == 1 {
        return ((poly[0][0] - p[0]).powi(2) + (poly[0][1] - p[1]).powi(2)).sqrt();
    }
    let segments = if closed { n } else { n.saturating_sub(1) };
    (0..segments)
        .map(|i| segment_distance_2d(p, poly[i], poly[(i + 1) % n]))
        .fold(f64::INFINITY, f64::min)
}

/// Distance from `p` to the segment `a b` in a plane.
pub(crate) fn segment_distance_2d(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((a[0] + t * d[0] - p[0]).powi(2) + (a[1] + t * d[1] - p[1]).powi(2)).sqrt()
}

/// Two unit vectors `(u, v)` with `u x v = n` for a unit `n`.
pub(crate) fn plane_basis(n: [f64; 3]) -> ([f64; 3], [f64; 3]) {
    // Take the patient axis least aligned with n, so the cross product is well conditioned.
    let a = if n[0].abs() <= n[1].abs() && n[0].abs() <= n[2].abs() {
        [1.0, 0.0, 0.0]
    } else if n[1].abs() <= n[2].abs() {
        [0.0, 1.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    };
    let u = cross(a, n);
    let u = scale(u, 1.0 / norm(u));
    (u, cross(n, u))
}

/// A segment of the section: from the point on `from` to the point on `to` (edges as sorted vertex pairs).
#[derive(Clone, Copy)]
struct Segment {
    from: (u32, u32),
    to: (u32, u32),
}

impl BoneQuery {
    /// The cross-section of the bone with the plane through `point_mm` with normal `normal` (normalised).
    pub fn section(&self, point_mm: [f64; 3], normal: [f64; 3]) -> Result<Section, MeasureError> {
        let point = finite_point("plane point", point_mm)?;
        let n = unit("plane normal", normal)?;
        let plane = Plane {
            point_mm: point,
            normal: n,
        };
        let mesh = self.mesh();
        let signed = |v: u32| plane.signed_distance_mm(mesh.positions[v as usize]);
        let edge_key = |a: u32, b: u32| if a < b { (a, b) } else { (b, a) };

        let mut segments: Vec<Segment> = Vec::new();
        for t in self.plane_candidates(point, n) {
            let Some(&tri) = mesh.triangles.get(t as usize) else {
                continue;
            };
            let above = tri.map(|v| signed(v) >= 0.0);
            if above[0] == above[1] && above[1] == above[2] {
                continue;
            }
            let (mut from, mut to) = (None, None);
            for i in 0..3 {
                let (a, b) = (tri[i], tri[(i + 1) % 3]);
                match (above[i], above[(i + 1) % 3]) {
                    (true, false) => from = Some(edge_key(a, b)),
                    (false, true) => to = Some(edge_key(a, b)),
                    _ => {}
                }
            }
            if let (Some(from), Some(to)) = (from, to) {
                segments.push(Segment { from, to });
            }
        }

        let edge_point = |(a, b): (u32, u32)| {
            let (pa, pb) = (mesh.positions[a as usize], mesh.positions[b as usize]);
            let (da, db) = (signed(a), signed(b));
            // A vertex on the plane is the point itself (`pa + 1 * (pb - pa)` can round away from `pb`).
            if da == 0.0 {
                return pa;
            }
            if db == 0.0 {
                return pb;
            }
            add(pa, scale(sub(pb, pa), da / (da - db)))
        };

        // Chain: segments sorted by their start edge; each loop starts at the lowest unused segment (triangle order).
        let mut by_start: Vec<(u32, u32, usize)> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.from.0, s.from.1, i))
            .collect();
        by_start.sort_unstable();
        let mut used = vec![false; segments.len()];
        let next_from = |edge: (u32, u32), used: &[bool]| {
            let lo = by_start.partition_point(|&(a, b, _)| (a, b) < edge);
            by_start[lo..]
                .iter()
                .take_while(|&&(a, b, _)| (a, b) == edge)
                .map(|&(_, _, i)| i)
                .find(|&i| !used[i])
        };
        let (u, v) = plane_basis(n);
        let mut loops = Vec::new();
        for start in 0..segments.len() {
            if used[start] {
                continue;
            }
            let mut points = Vec::new();
            let mut current = start;
            let closed = loop {
                used[current] = true;
                let p = edge_point(segments[current].from);
                if points.last() != Some(&p) {
                    points.push(p);
                }
                let to = segments[current].to;
                if to == segments[start].from {
                    break true;
                }
                match next_from(to, &used) {
                    Some(next) => current = next,
                    None => {
                        points.push(edge_point(to));
                        break false;
                    }
                }
            };
            if closed && points.len() > 1 && points.first() == points.last() {
                points.pop();
            }
            loops.push(contour(points, closed, point, u, v));
        }
        loops.sort_by(|a, b| b.signed_area_mm2.abs().total_cmp(&a.signed_area_mm2.abs()));

        let total_length_mm = loops.iter().map(|l| l.perimeter_mm).sum();
        let (net_area_mm2, moment) = loops.iter().filter(|l| l.closed).fold((0.0, [0.0; 2]), |(area, m), l| {
            let (a, lm) = area_moment(&l.points_mm, point, u, v);
            (area + a, [m[0] + lm[0], m[1] + lm[1]])
        });
        let centroid_mm = (net_area_mm2 != 0.0 && net_area_mm2.is_finite()).then(|| {
            let (cu, cv) = (moment[0] / net_area_mm2, moment[1] / net_area_mm2);
            add(point, add(scale(u, cu), scale(v, cv)))
        });
        let open_loops = loops.iter().filter(|l| !l.closed).count();
        Ok(Section {
            plane,
            loops,
            total_length_mm,
            net_area_mm2,
            centroid_mm,
            open_loops,
        })
    }
}

/// Signed area (mm^2) and first moments (mm^3, along `u` and `v`) of a closed polygon, in plane coordinates around
/// `origin` (the shoelace formula and its centroid form).
fn area_moment(points: &[[f64; 3]], origin: [f64; 3], u: [f64; 3], v: [f64; 3]) -> (f64, [f64; 2]) {
    let local = |p: [f64; 3]| {
        let d = sub(p, origin);
        (dot(d, u), dot(d, v))
    };
    let (mut area2, mut mu, mut mv) = (0.0, 0.0, 0.0);
    for (i, &p) in points.iter().enumerate() {
        let (x0, y0) = local(p);
        let (x1, y1) = local(points[(i + 1) % points.len()]);
        let c = x0 * y1 - x1 * y0;
        area2 += c;
        mu += (x0 + x1) * c;
        mv += (y0 + y1) * c;
    }
    (0.5 * area2, [mu / 6.0, mv / 6.0])
}

fn contour(points_mm: Vec<[f64; 3]>, closed: bool, origin: [f64; 3], u: [f64; 3], v: [f64; 3]) -> Contour {
    let n = points_mm.len();
    let segments = if closed { n } else { n.saturating_sub(1) };
    let perimeter_mm = (0..segments)
        .map(|i| norm(sub(points_mm[(i + 1) % n], points_mm[i])))
        .sum();
    let signed_area_mm2 = if closed {
        area_moment(&points_mm, origin, u, v).0
    } else {
        0.0
    };
    Contour {
        points_mm,
        closed,
        perimeter_mm,
        signed_area_mm2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::query::tests::cube;
    use crate::mesh::Mesh;

    #[test]
    fn unit_cube_section_is_a_unit_square_counter_clockwise() {
        let q = BoneQuery::new(&cube()).expect("query");
        let s = q.section([0.0, 0.0, 0.25], [0.0, 0.0, 1.0]).expect("section");
        assert_eq!(s.loops.len(), 1);
        assert!(s.loops[0].closed);
        assert!((s.net_area_mm2 - 1.0).abs() < 1e-12, "{}", s.net_area_mm2);
        assert!((s.total_length_mm - 4.0).abs() < 1e-12);
        let c = s.centroid_mm.expect("centroid");
        assert!((c[0] - 0.5).abs() < 1e-12 && (c[1] - 0.5).abs() < 1e-12 && (c[2] - 0.25).abs() < 1e-12);
        // The opposite normal sees the same loop clockwise: area stays positive because the direction flips too.
        let s = q.section([0.0, 0.0, 0.25], [0.0, 0.0, -1.0]).expect("section");
        assert!((s.net_area_mm2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn plane_through_vertices_and_a_face_still_closes() {
        let q = BoneQuery::new(&cube()).expect("query");
        // z = 0 holds the bottom face: its vertices count as above, so the plane behaves as if just below the cube.
        let s = q.section([0.0, 0.0, 0.0], [0.0, 0.0, 1.0]).expect("section");
        assert!(s.is_empty() && s.open_loops == 0, "{s:?}");
        // z = 1 holds the top face: the plane behaves as if just below it, so the whole square.
        let s = q.section([0.0, 0.0, 1.0], [0.0, 0.0, 1.0]).expect("section");
        assert_eq!(s.open_loops, 0);
        assert!((s.net_area_mm2 - 1.0).abs() < 1e-12, "{}", s.net_area_mm2);
        // A diagonal plane through two opposite vertical edges: a 1 x sqrt(2) rectangle.
        let s = q.section([0.0, 0.0, 0.0], [1.0, -1.0, 0.0]).expect("section");
        assert_eq!(s.open_loops, 0);
        assert!((s.net_area_mm2 - 2f64.sqrt()).abs() < 1e-12, "{}", s.net_area_mm2);
        // Beyond the cube: nothing.
        let s = q.section([0.0, 0.0, 2.0], [0.0, 0.0, 1.0]).expect("section");
        assert!(s.is_empty() && s.centroid_mm.is_none());
    }

    /// Two unit cubes `gap` mm apart along x.
    fn two_cubes(gap: f64) -> Mesh {
        let a = cube();
        let mut both = a.clone();
        let offset = a.positions.len() as u32;
        both.positions
            .extend(a.positions.iter().map(|p| [p[0] + 1.0 + gap, p[1], p[2]]));
        both.triangles.extend(a.triangles.iter().map(|t| t.map(|v| v + offset)));
        both
    }

    /// Two unit cubes 40 mm apart (a U's two arms, cut across): the piece at the plane's point is one square; the
    /// other is counted and placed.
    #[test]
    fn piece_at_the_point_is_the_cut_arm_only() {
        let q = BoneQuery::new(&two_cubes(40.0)).expect("query");
        let s = q.section([41.5, 0.5, 0.5], [0.0, 1.0, 0.0]).expect("section");
        assert_eq!(s.loops.len(), 2);
        assert!((s.net_area_mm2 - 2.0).abs() < 1e-12);
        // The whole section's centroid lies between the arms, in no bone.
        let c = s.centroid_mm.expect("centroid");
        assert!((c[0] - 21.0).abs() < 1e-12, "{c:?}");
        for (at, x) in [
            ([41.5, 0.5, 0.5], 41.5),
            ([0.2, 0.5, 0.9], 0.5),
            ([-0.4, 0.5, 0.5], 0.5),
            ([42.3, 0.5, 0.5], 41.5),
        ] {
            let piece = s.piece_at(at);
            assert_eq!(piece.section.loops.len(), 1, "{at:?}");
            assert!((piece.section.net_area_mm2 - 1.0).abs() < 1e-12);
            assert!((piece.section.total_length_mm - 4.0).abs() < 1e-12);
            let c = piece.section.centroid_mm.expect("centroid");
            assert!((c[0] - x).abs() < 1e-12 && (c[2] - 0.5).abs() < 1e-12, "{at:?}: {c:?}");
            assert_eq!(piece.other_pieces, 1);
            let other = piece.nearest_other_mm.expect("the other arm");
            assert!((other[0] - (42.0 - x)).abs() < 1e-12, "{other:?}");
        }
        // Walls 20 mm apart (a Le Fort I cut across both sides of the nasal cavity): one piece of two contours.
        let q = BoneQuery::new(&two_cubes(20.0)).expect("query");
        let s = q.section([0.5, 0.5, 0.5], [0.0, 1.0, 0.0]).expect("section");
        let piece = s.piece_at([0.5, 0.5, 0.5]);
        assert_eq!((piece.section.loops.len(), piece.other_pieces), (2, 0));
        assert_eq!(piece.section, s);
        // One piece only: the piece is the whole section.
        let q = BoneQuery::new(&cube()).expect("query");
        let s = q.section([0.5, 0.5, 0.5], [0.0, 1.0, 0.0]).expect("section");
        let piece = s.piece_at([0.5, 0.5, 0.5]);
        assert_eq!((piece.section.clone(), piece.other_pieces), (s, 0));
    }

    #[test]
    fn plane_basis_is_right_handed() {
        for n in [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.6, 0.0, 0.8], [-0.48, 0.6, 0.64]] {
            let (u, v) = plane_basis(n);
            let w = cross(u, v);
            for a in 0..3 {
                assert!((w[a] - n[a]).abs() < 1e-12);
            }
        }
    }
}
