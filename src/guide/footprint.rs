//! A guide's footprint: the outline a user draws around the region the pad covers, seen along the seating
//! direction, as a simple polygon in the guide frame's `(u, v)` plane, and the closed prism that cuts the pad to it.
//!
//! Why a prism and a boolean: the pad is first built over a rectangle (so its solid is closed by construction) and
//! then intersected with the footprint's prism, which gives the pad an exact outline instead of a staircase of grid
//! cells. The polygon is checked (enough distinct points, no crossing edges, non-zero area) so a badly drawn outline
//! is an error that names the guide, never a broken solid.

use nalgebra::{Point3, Vector3};

use super::heightfield::GuideFrame;
use crate::mesh::Mesh;

/// Points closer than this (mm) are one point of the outline.
const DUPLICATE_POINT_MM: f64 = 1e-6;

/// Why an outline is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FootprintError {
    /// Fewer than three distinct points.
    #[error("the footprint outline has {0} distinct points seen along the seating direction; it needs at least 3")]
    TooFewPoints(usize),
    /// Two edges cross.
    #[error("the footprint outline crosses itself (edges {0} and {1})")]
    SelfCrossing(usize, usize),
    /// All points on a line.
    #[error("the footprint outline has no area seen along the seating direction")]
    NoArea,
}

/// A simple polygon, counter-clockwise in the frame's `(u, v)` plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// Vertices `(u, v)` in mm, counter-clockwise.
    pub uv_mm: Vec<[f64; 2]>,
}

impl Footprint {
    /// Projects patient-space outline points along the frame's `w` axis and checks the polygon.
    pub fn new(frame: &GuideFrame, outline_mm: &[[f64; 3]]) -> Result<Footprint, FootprintError> {
        let mut uv: Vec<[f64; 2]> = Vec::with_capacity(outline_mm.len());
        for p in outline_mm {
            let q = frame.frame_from_patient(&Point3::from(*p));
            let q = [q.x, q.y];
            if uv.last().is_none_or(|l: &[f64; 2]| dist(l, &q) > DUPLICATE_POINT_MM) {
                uv.push(q);
            }
        }
        while uv.len() > 1 && dist(&uv[0], &uv[uv.len() - 1]) <= DUPLICATE_POINT_MM {
            uv.pop();
        }
        if uv.len() < 3 {
            return Err(FootprintError::TooFewPoints(uv.len()));
        }
        let n = uv.len();
        for a in 0..n {
            for b in a + 1..n {
                // Adjacent edges share a point and are not tested.
                if b == a + 1 || (a == 0 && b == n - 1) {
                    continue;
                }
                if segments_cross(&uv[a], &uv[(a + 1) % n], &uv[b], &uv[(b + 1) % n]) {
                    return Err(FootprintError::SelfCrossing(a, b));
                }
            }
        }
        let area = signed_area(&uv);
        if area.abs() < 1e-9 {
            return Err(FootprintError::NoArea);
        }
        if area < 0.0 {
            uv.reverse();
        }
        Ok(Footprint { uv_mm: uv })
    }

    /// Area, mm^2.
    pub fn area_mm2(&self) -> f64 {
        signed_area(&self.uv_mm)
    }

    /// `(min_u, min_v, max_u, max_v)`.
    pub fn bounds_mm(&self) -> [f64; 4] {
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for p in &self.uv_mm {
            b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
        }
        b
    }

    /// Whether `(u, v)` lies inside (even-odd rule; points on the outline may go either way).
    pub fn contains(&self, u: f64, v: f64) -> bool {
        let mut inside = false;
        let n = self.uv_mm.len();
        for k in 0..n {
            let (a, b) = (self.uv_mm[k], self.uv_mm[(k + 1) % n]);
            if (a[1] > v) != (b[1] > v) {
                let x = a[0] + (v - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                if u < x {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// Distance from `(u, v)` to the outline, mm.
    pub fn distance_to_outline_mm(&self, u: f64, v: f64) -> f64 {
        let n = self.uv_mm.len();
        (0..n)
            .map(|k| point_segment_distance(&[u, v], &self.uv_mm[k], &self.uv_mm[(k + 1) % n]))
            .fold(f64::INFINITY, f64::min)
    }

    /// The chord of the polygon along the line `origin + t * dir` (2D): the smallest and largest `t` where it meets
    /// the outline, or `None` if it misses.
    pub fn chord(&self, origin: [f64; 2], dir: [f64; 2]) -> Option<(f64, f64)> {
        let n = self.uv_mm.len();
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for k in 0..n {
            let (a, b) = (self.uv_mm[k], self.uv_mm[(k + 1) % n]);
            let e = [b[0] - a[0], b[1] - a[1]];
            let denom = dir[0] * e[1] - dir[1] * e[0];
            if denom.abs() < 1e-15 {
                continue;
            }
            let d = [a[0] - origin[0], a[1] - origin[1]];
            let t = (d[0] * e[1] - d[1] * e[0]) / denom;
            let s = (d[0] * dir[1] - d[1] * dir[0]) / denom;
            if (0.0..=1.0).contains(&s) {
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
        (lo < hi).then_some((lo, hi))
    }

    /// Convex pieces (counter-clockwise triangles) that tile the polygon.
    pub fn ears(&self) -> Vec<[[f64; 2]; 3]> {
        triangulate(&self.uv_mm)
            .into_iter()
            .map(|t| [self.uv_mm[t[0]], self.uv_mm[t[1]], self.uv_mm[t[2]]])
            .collect()
    }

    /// The closed prism over the polygon between heights `w_lo_mm < w_hi_mm`, in patient coordinates, outward.
    pub fn prism(&self, frame: &GuideFrame, w_lo_mm: f64, w_hi_mm: f64) -> Mesh {
        let n = self.uv_mm.len();
        let mut positions = Vec::with_capacity(2 * n);
        for w in [w_hi_mm, w_lo_mm] {
            for p in &self.uv_mm {
                positions.push(frame.patient_from_frame(&Vector3::new(p[0], p[1], w)).coords.into());
            }
        }
        let mut triangles = Vec::with_capacity(4 * n);
        for t in triangulate(&self.uv_mm) {
            triangles.push([t[0] as u32, t[1] as u32, t[2] as u32]);
            triangles.push([(n + t[0]) as u32, (n + t[2]) as u32, (n + t[1]) as u32]);
        }
        for k in 0..n {
            let (a, b) = (k as u32, ((k + 1) % n) as u32);
            let (na, nb) = (a + n as u32, b + n as u32);
            triangles.push([a, na, nb]);
            triangles.push([a, nb, b]);
        }
        Mesh { positions, triangles }
    }
}

/// One edge of a plan's outline moved along its normal in the frame's `(u, v)` plane: the edge from point `edge` to
/// the next, the one nearest `near_mm` seen along the seating direction.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeMove {
    /// Index of the edge's first point in the outline (the edge runs to the next point, the last to the first).
    pub edge: usize,
    /// Distance from `near_mm` to that edge, seen along the seating direction, mm.
    pub distance_mm: f64,
    /// The outline with the edge's two points moved, patient LPS mm.
    pub outline_mm: Vec<[f64; 3]>,
}

/// `outline_mm` (a plan's footprint, in the plan's order) with its edge nearest `near_mm` moved by `by_mm` along the
/// edge's normal in the frame's `(u, v)` plane: outward (away from the inside) for positive `by_mm`. Both points of
/// the edge move by the same vector, so the edge stays parallel and its neighbours tilt. `None` for an outline
/// without area.
pub fn move_nearest_edge(
    frame: &GuideFrame,
    outline_mm: &[[f64; 3]],
    near_mm: [f64; 3],
    by_mm: f64,
) -> Option<EdgeMove> {
    let uv: Vec<[f64; 2]> = outline_mm
        .iter()
        .map(|p| {
            let q = frame.frame_from_patient(&Point3::from(*p));
            [q.x, q.y]
        })
        .collect();
    let n = uv.len();
    let area = signed_area(&uv);
    if n < 3 || area == 0.0 || !area.is_finite() {
        return None;
    }
    let q = frame.frame_from_patient(&Point3::from(near_mm));
    let at = [q.x, q.y];
    let (edge, distance_mm) = (0..n)
        .map(|k| (k, point_segment_distance(&at, &uv[k], &uv[(k + 1) % n])))
        .filter(|(k, _)| dist(&uv[*k], &uv[(k + 1) % n]) > DUPLICATE_POINT_MM)
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let (a, b) = (uv[edge], uv[(edge + 1) % n]);
    let len = dist(&a, &b);
    // Counter-clockwise: the outside is on the right of each edge.
    let sign = area.signum();
    let normal = [sign * (b[1] - a[1]) / len, -sign * (b[0] - a[0]) / len];
    let shift = frame.axes.column(0) * (normal[0] * by_mm) + frame.axes.column(1) * (normal[1] * by_mm);
    let mut moved = outline_mm.to_vec();
    for k in [edge, (edge + 1) % n] {
        moved[k] = (Vector3::from(moved[k]) + shift).into();
    }
    Some(EdgeMove {
        edge,
        distance_mm,
        outline_mm: moved,
    })
}

fn dist(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn signed_area(p: &[[f64; 2]]) -> f64 {
    let n = p.len();
    0.5 * (0..n)
        .map(|k| p[k][0] * p[(k + 1) % n][1] - p[(k + 1) % n][0] * p[k][1])
        .sum::<f64>()
}

fn cross(o: &[f64; 2], a: &[f64; 2], b: &[f64; 2]) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

fn point_segment_distance(p: &[f64; 2], a: &[f64; 2], b: &[f64; 2]) -> f64 {
    let e = [b[0] - a[0], b[1] - a[1]];
    let len2 = e[0] * e[0] + e[1] * e[1];
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * e[0] + (p[1] - a[1]) * e[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    dist(p, &[a[0] + t * e[0], a[1] + t * e[1]])
}

/// Proper or touching intersection of two segments.
fn segments_cross(a: &[f64; 2], b: &[f64; 2], c: &[f64; 2], d: &[f64; 2]) -> bool {
    let (d1, d2, d3, d4) = (cross(c, d, a), cross(c, d, b), cross(a, b, c), cross(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    let on = |p: &[f64; 2], q: &[f64; 2], r: &[f64; 2], d: f64| {
        d == 0.0 && r[0] >= p[0].min(q[0]) && r[0] <= p[0].max(q[0]) && r[1] >= p[1].min(q[1]) && r[1] <= p[1].max(q[1])
    };
    on(c, d, a, d1) || on(c, d, b, d2) || on(a, b, c, d3) || on(a, b, d, d4)
}

/// Triangulates a simple counter-clockwise polygon into counter-clockwise triangles: the constrained Delaunay
/// triangulation of its outline (spade), which keeps triangles as far from slivers as the outline allows.
///
/// Why not ear clipping alone: the first-ear rule fans long outlines from one vertex into slivers tens of mm long
/// and a few um wide; the pad's outline cut ([`super::clip`]) clips grid triangles by them, and the welded cut points
/// of such slivers turned tiny pieces over, so the pad crossed itself (15 triangle pairs on a proposed footprint of
/// the demo's drill guide). Ear clipping remains the fallback if the triangulation refuses the outline.
pub(crate) fn triangulate(p: &[[f64; 2]]) -> Vec<[usize; 3]> {
    use spade::{ConstrainedDelaunayTriangulation, Point2, Triangulation};
    let mut cdt: ConstrainedDelaunayTriangulation<Point2<f64>> = ConstrainedDelaunayTriangulation::new();
    let mut handles = Vec::with_capacity(p.len());
    for q in p {
        match cdt.insert(Point2::new(q[0], q[1])) {
            Ok(h) => handles.push(h),
            Err(_) => return ear_clip(p),
        }
    }
    // Ours of each spade vertex (a repeated point would map two of ours to one of spade's: refuse it).
    let mut ours = vec![usize::MAX; cdt.num_vertices()];
    for (k, h) in handles.iter().enumerate() {
        if ours[h.index()] != usize::MAX {
            return ear_clip(p);
        }
        ours[h.index()] = k;
    }
    for k in 0..p.len() {
        if cdt.try_add_constraint(handles[k], handles[(k + 1) % p.len()]).len() != 1 {
            return ear_clip(p);
        }
    }
    let inside = |c: [f64; 2]| {
        let mut odd = false;
        for k in 0..p.len() {
            let (a, b) = (p[k], p[(k + 1) % p.len()]);
            if (a[1] > c[1]) != (b[1] > c[1]) && c[0] < a[0] + (c[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]) {
                odd = !odd;
            }
        }
        odd
    };
    let mut out = Vec::with_capacity(p.len().saturating_sub(2));
    for f in cdt.inner_faces() {
        let t = f.vertices().map(|v| ours[v.index()]);
        let c = [
            (p[t[0]][0] + p[t[1]][0] + p[t[2]][0]) / 3.0,
            (p[t[0]][1] + p[t[1]][1] + p[t[2]][1]) / 3.0,
        ];
        if inside(c) {
            out.push(if cross(&p[t[0]], &p[t[1]], &p[t[2]]) > 0.0 {
                t
            } else {
                [t[0], t[2], t[1]]
            });
        }
    }
    if out.len() + 2 != p.len() {
        return ear_clip(p);
    }
    // Spade's face order follows its internal handles; sort for an order that depends on the polygon only.
    out.sort_unstable();
    out
}

/// Triangulates a simple counter-clockwise polygon by ear clipping (deterministic: always the first ear).
pub(crate) fn ear_clip(p: &[[f64; 2]]) -> Vec<[usize; 3]> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    let mut out = Vec::with_capacity(p.len().saturating_sub(2));
    while idx.len() > 3 {
        let m = idx.len();
        let mut clipped = false;
        for k in 0..m {
            let (a, b, c) = (idx[(k + m - 1) % m], idx[k], idx[(k + 1) % m]);
            if cross(&p[a], &p[b], &p[c]) <= 0.0 {
                continue; // reflex or flat corner
            }
            let blocked = idx.iter().any(|&q| {
                q != a
                    && q != b
                    && q != c
                    && cross(&p[a], &p[b], &p[q]) >= 0.0
                    && cross(&p[b], &p[c], &p[q]) >= 0.0
                    && cross(&p[c], &p[a], &p[q]) >= 0.0
            });
            if !blocked {
                out.push([a, b, c]);
                idx.remove(k);
                clipped = true;
                break;
            }
        }
        if !clipped {
            // Only collinear runs are left (a checked simple polygon always has an ear otherwise): fan them.
            for k in 1..idx.len() - 1 {
                out.push([idx[0], idx[k], idx[k + 1]]);
            }
            return out;
        }
    }
    out.push([idx[0], idx[1], idx[2]]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshReport;

    fn frame() -> GuideFrame {
        GuideFrame::new(Point3::new(10.0, 20.0, 30.0), Vector3::new(0.3, 0.2, -1.0)).expect("frame")
    }

    fn outline(frame: &GuideFrame, uv: &[[f64; 2]]) -> Vec<[f64; 3]> {
        // Points at varying heights: only their projection matters.
        uv.iter()
            .enumerate()
            .map(|(k, p)| {
                frame
                    .patient_from_frame(&Vector3::new(p[0], p[1], k as f64 * 0.7))
                    .coords
                    .into()
            })
            .collect()
    }

    #[test]
    fn a_non_convex_outline_gives_a_closed_prism_of_the_right_volume() {
        let f = frame();
        // An L shape drawn clockwise, area 3 * 1 + 1 * 1 = ... (0,0)-(3,0)-(3,1)-(1,1)-(1,3)-(0,3): area 5.
        let l = [[0.0, 0.0], [0.0, 3.0], [1.0, 3.0], [1.0, 1.0], [3.0, 1.0], [3.0, 0.0]];
        let fp = Footprint::new(&f, &outline(&f, &l)).expect("footprint");
        assert!((fp.area_mm2() - 5.0).abs() < 1e-9);
        assert!(fp.contains(0.5, 2.5) && !fp.contains(2.0, 2.0));
        let prism = fp.prism(&f, -1.0, 1.5);
        let report = MeshReport::new(&prism);
        assert!(report.is_valid(), "{report}");
        assert!((prism.signed_volume_mm3() - 12.5).abs() < 1e-9);
        let (lo, hi) = fp.chord([-1.0, 0.5], [1.0, 0.0]).expect("chord");
        assert!((lo - 1.0).abs() < 1e-12 && (hi - 4.0).abs() < 1e-12);
        assert!((fp.distance_to_outline_mm(0.5, 0.25) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn bad_outlines_are_refused() {
        let f = frame();
        let bow_tie = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]];
        assert!(matches!(
            Footprint::new(&f, &outline(&f, &bow_tie)),
            Err(FootprintError::SelfCrossing(..))
        ));
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]];
        assert!(matches!(
            Footprint::new(&f, &outline(&f, &line)),
            Err(FootprintError::NoArea)
        ));
        let two = [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]];
        assert_eq!(
            Footprint::new(&f, &outline(&f, &two)),
            Err(FootprintError::TooFewPoints(2))
        );
    }

    #[test]
    fn the_edge_nearest_a_point_moves_outward_or_inward() {
        let f = frame();
        // A 4 x 2 rectangle drawn clockwise in (u, v): the edge from point 1 to 2 is its top (v = 2).
        let rect = [[0.0, 0.0], [0.0, 2.0], [4.0, 2.0], [4.0, 0.0]];
        let outline_mm = outline(&f, &rect);
        let near: [f64; 3] = f.patient_from_frame(&Vector3::new(2.0, 1.7, 5.0)).coords.into();
        let grown = move_nearest_edge(&f, &outline_mm, near, 1.5).expect("moved");
        assert_eq!(grown.edge, 1);
        assert!((grown.distance_mm - 0.3).abs() < 1e-9);
        let fp = Footprint::new(&f, &grown.outline_mm).expect("footprint");
        assert!((fp.area_mm2() - 4.0 * 3.5).abs() < 1e-9, "{}", fp.area_mm2());
        let shrunk = move_nearest_edge(&f, &outline_mm, near, -0.5).expect("moved");
        let fp = Footprint::new(&f, &shrunk.outline_mm).expect("footprint");
        assert!((fp.area_mm2() - 4.0 * 1.5).abs() < 1e-9, "{}", fp.area_mm2());
        // The other points stay where they were.
        assert_eq!(grown.outline_mm[0], outline_mm[0]);
        assert_eq!(grown.outline_mm[3], outline_mm[3]);
    }
}
