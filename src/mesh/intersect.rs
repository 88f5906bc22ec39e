//! Triangle-triangle intersection tests that know about shared vertices.
//!
//! Why special handling: in a valid mesh almost every pair of triangles whose boxes overlap shares a vertex or an
//! edge, and a generic test reports all of them as touching. The rules used here are the topological ones:
//! - three shared vertices: a duplicated triangle, always an intersection;
//! - a shared edge `ab` (third vertices `c`, `d`): the triangles meet elsewhere only if `d` lies in the plane of
//!   `abc` on the same side of `ab` as `c` (a fold); the plane test uses a tiny relative tolerance
//!   ([`FOLD_SINE`]) so a fold that rounding made one ulp non-planar is still reported;
//! - one shared vertex `a` (`abc`, `ade`): they meet elsewhere iff segment `bc` touches `ade` or segment `de`
//!   touches `abc` (the intersection of two triangles through a common point is a segment from that point, whose
//!   far end lies on one of those two opposite edges);
//! - nothing shared: the classic closed-triangle test (some edge of one touches the other, or coplanar overlap).
//!
//! Points are classified against a plane with a relative tolerance ([`PLANE_EPS`] times the triangle size) so that
//! nearly coplanar neighbours in flat regions are resolved by an exact-in-spirit 2D test instead of by the sign of
//! rounding noise.

use super::{cross, dot, norm, sub};

/// Relative distance below which a point counts as lying in a triangle's plane.
const PLANE_EPS: f64 = 1e-10;

/// Sine of the dihedral angle below which two edge-sharing triangles folded onto each other count as overlapping.
pub(crate) const FOLD_SINE: f64 = 1e-7;

type P = [f64; 3];

#[inline]
fn orient2(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

#[inline]
fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// Closed 2D segments intersect.
fn segments_2d(p: [f64; 2], q: [f64; 2], a: [f64; 2], b: [f64; 2]) -> bool {
    let d1 = sign(orient2(a, b, p));
    let d2 = sign(orient2(a, b, q));
    let d3 = sign(orient2(p, q, a));
    let d4 = sign(orient2(p, q, b));
    if d1 * d2 < 0 && d3 * d4 < 0 {
        return true;
    }
    let on = |s: [f64; 2], e: [f64; 2], x: [f64; 2]| {
        x[0] >= s[0].min(e[0]) && x[0] <= s[0].max(e[0]) && x[1] >= s[1].min(e[1]) && x[1] <= s[1].max(e[1])
    };
    (d1 == 0 && on(a, b, p)) || (d2 == 0 && on(a, b, q)) || (d3 == 0 && on(p, q, a)) || (d4 == 0 && on(p, q, b))
}

/// Closed 2D point in triangle (either winding).
fn point_in_triangle_2d(x: [f64; 2], t: [[f64; 2]; 3]) -> bool {
    let s0 = orient2(t[0], t[1], x);
    let s1 = orient2(t[1], t[2], x);
    let s2 = orient2(t[2], t[0], x);
    (s0 >= 0.0 && s1 >= 0.0 && s2 >= 0.0) || (s0 <= 0.0 && s1 <= 0.0 && s2 <= 0.0)
}

/// Projection dropping the dominant axis of `n`.
fn projector(n: P) -> impl Fn(P) -> [f64; 2] {
    let ax = n[0].abs();
    let ay = n[1].abs();
    let az = n[2].abs();
    let drop = if ax >= ay && ax >= az {
        0
    } else if ay >= az {
        1
    } else {
        2
    };
    move |p: P| match drop {
        0 => [p[1], p[2]],
        1 => [p[0], p[2]],
        _ => [p[0], p[1]],
    }
}

fn segment_triangle_2d(p: P, q: P, t: &[P; 3], n: P) -> bool {
    let pr = projector(n);
    let (p2, q2) = (pr(p), pr(q));
    let t2 = [pr(t[0]), pr(t[1]), pr(t[2])];
    point_in_triangle_2d(p2, t2)
        || point_in_triangle_2d(q2, t2)
        || segments_2d(p2, q2, t2[0], t2[1])
        || segments_2d(p2, q2, t2[1], t2[2])
        || segments_2d(p2, q2, t2[2], t2[0])
}

#[inline]
fn orient3(a: P, b: P, c: P, d: P) -> f64 {
    dot(cross(sub(b, a), sub(c, a)), sub(d, a))
}

/// Plane of a triangle: unit normal and a length tolerance for side tests. Computed once per triangle by the
/// caller (a triangle takes part in ~15 candidate pairs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plane {
    unit: P,
    tol: f64,
}

impl Plane {
    /// `None` for a degenerate (zero-area or non-finite) triangle.
    pub(crate) fn of(t: &[P; 3]) -> Option<Plane> {
        let n = cross(sub(t[1], t[0]), sub(t[2], t[0]));
        let len = norm(n);
        if len == 0.0 || !len.is_finite() {
            return None;
        }
        let l2 = |a: P, b: P| {
            let d = sub(a, b);
            dot(d, d)
        };
        let size = l2(t[1], t[0]).max(l2(t[2], t[0])).max(l2(t[2], t[1])).sqrt();
        Some(Plane {
            unit: [n[0] / len, n[1] / len, n[2] / len],
            tol: PLANE_EPS * size,
        })
    }

    /// -1, 0, +1: side of `p` relative to the plane through `origin`, points within the tolerance on the plane.
    #[inline]
    fn side(&self, origin: P, p: P) -> i8 {
        let d = dot(self.unit, sub(p, origin));
        if d > self.tol {
            1
        } else if d < -self.tol {
            -1
        } else {
            0
        }
    }
}

/// Closed segment `pq` touches closed triangle `t` (with plane `pl`).
fn segment_triangle(p: P, q: P, t: &[P; 3], pl: &Plane) -> bool {
    let sp = pl.side(t[0], p);
    let sq = pl.side(t[0], q);
    if sp * sq > 0 {
        return false;
    }
    if sp == 0 && sq == 0 {
        return segment_triangle_2d(p, q, t, pl.unit);
    }
    // One end in the plane (within the tolerance), the other off it: the segment meets the plane at that end only.
    // (The line test below would look for where the *line* pq crosses the plane, which for a segment nearly in the
    // plane can be far beyond its end.)
    if sp == 0 || sq == 0 {
        let on = if sp == 0 { p } else { q };
        let pr = projector(pl.unit);
        return point_in_triangle_2d(pr(on), t.map(&pr));
    }
    // The segment crosses the plane at one point; it lies in the triangle iff the three tetrahedra built on pq and
    // the triangle edges have one orientation.
    let s1 = orient3(p, q, t[0], t[1]);
    let s2 = orient3(p, q, t[1], t[2]);
    let s3 = orient3(p, q, t[2], t[0]);
    (s1 >= 0.0 && s2 >= 0.0 && s3 >= 0.0) || (s1 <= 0.0 && s2 <= 0.0 && s3 <= 0.0)
}

/// General closed triangle-triangle intersection (no shared vertex assumed).
fn triangles_touch(a: &[P; 3], pa: &Plane, b: &[P; 3], pb: &Plane) -> bool {
    let sb = [pa.side(a[0], b[0]), pa.side(a[0], b[1]), pa.side(a[0], b[2])];
    if sb.iter().all(|&s| s > 0) || sb.iter().all(|&s| s < 0) {
        return false;
    }
    let sa = [pb.side(b[0], a[0]), pb.side(b[0], a[1]), pb.side(b[0], a[2])];
    if sa.iter().all(|&s| s > 0) || sa.iter().all(|&s| s < 0) {
        return false;
    }
    if sb.iter().all(|&s| s == 0) {
        // Coplanar: overlap iff an edge of one touches the other (covers containment through the point tests).
        return (0..3).any(|k| segment_triangle_2d(b[k], b[(k + 1) % 3], a, pa.unit))
            || (0..3).any(|k| segment_triangle_2d(a[k], a[(k + 1) % 3], b, pa.unit));
    }
    (0..3).any(|k| segment_triangle(b[k], b[(k + 1) % 3], a, pa))
        || (0..3).any(|k| segment_triangle(a[k], a[(k + 1) % 3], b, pb))
}

/// The vertices `a` and `b` share, as (position in `a`, position in `b`), and how many.
#[inline]
fn shared_vertices(ia: [u32; 3], ib: [u32; 3]) -> ([(usize, usize); 3], usize) {
    let mut shared = [(0, 0); 3];
    let mut n = 0;
    for (ka, &va) in ia.iter().enumerate() {
        if let Some(kb) = ib.iter().position(|&vb| vb == va) {
            shared[n] = (ka, kb);
            n += 1;
        }
    }
    (shared, n)
}

/// What [`certainly_apart`] needs of a triangle: its unnormalised normal, that normal's squared length and the
/// squared length of its longest edge (no square root, no division).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuickPlane {
    normal: P,
    normal2: f64,
    size2: f64,
}

impl QuickPlane {
    pub(crate) fn of(t: &[P; 3]) -> QuickPlane {
        let normal = cross(sub(t[1], t[0]), sub(t[2], t[0]));
        let l2 = |a: P, b: P| {
            let d = sub(a, b);
            dot(d, d)
        };
        QuickPlane {
            normal,
            normal2: dot(normal, normal),
            size2: l2(t[1], t[0]).max(l2(t[2], t[0])).max(l2(t[2], t[1])),
        }
    }

    /// +1 or -1 when `p` is on that side of the plane through `origin` by more than twice the tolerance of
    /// [`Plane::side`], else 0.
    #[inline]
    fn clear_side(&self, origin: P, p: P) -> i8 {
        let d = dot(self.normal, sub(p, origin));
        if d * d > 4.0 * PLANE_EPS * PLANE_EPS * self.size2 * self.normal2 {
            sign(d)
        } else {
            0
        }
    }

    /// All three points clearly on the same side of the plane through `origin`.
    #[inline]
    fn clearly_one_side(&self, origin: P, p: &[P]) -> bool {
        let first = self.clear_side(origin, p[0]);
        first != 0 && p[1..].iter().all(|&q| self.clear_side(origin, q) == first)
    }
}

/// A cheap, conservative form of `!triangles_intersect`: true only when the exact test would certainly answer
/// "no", decided by which side of each other's planes the corners lie, with twice the tolerances of the exact test
/// (so rounding cannot make the two disagree); false means "run the exact test". Used where almost every pair is
/// apart (neighbouring triangles of one marching-cubes cell).
pub(crate) fn certainly_apart(
    ia: [u32; 3],
    ta: &[P; 3],
    qa: &QuickPlane,
    ib: [u32; 3],
    tb: &[P; 3],
    qb: &QuickPlane,
) -> bool {
    let (shared, n_shared) = shared_vertices(ia, ib);
    match n_shared {
        0 => qa.clearly_one_side(ta[0], tb) || qb.clearly_one_side(tb[0], ta),
        1 => {
            // Each triangle's edge opposite the shared vertex must stay clear of the other's plane.
            let (ka, kb) = shared[0];
            qb.clearly_one_side(tb[0], &[ta[(ka + 1) % 3], ta[(ka + 2) % 3]])
                && qa.clearly_one_side(ta[0], &[tb[(kb + 1) % 3], tb[(kb + 2) % 3]])
        }
        2 => {
            // A fold needs d within FOLD_SINE of a's plane relative to its in-plane distance from the shared edge,
            // which is at most |d - a|: d twice as far off the plane cannot fold.
            let a = ta[shared[0].0];
            let d = tb[3 - shared[0].1 - shared[1].1];
            let off = dot(qa.normal, sub(d, a));
            let da = sub(d, a);
            off * off > 4.0 * FOLD_SINE * FOLD_SINE * qa.normal2 * dot(da, da)
        }
        _ => false,
    }
}

/// [`triangles_intersect`] computing the planes itself; degenerate triangles never intersect here (the
/// degenerate-triangle check owns them).
#[cfg(test)]
pub(crate) fn triangles_intersect_points(ia: [u32; 3], ta: &[P; 3], ib: [u32; 3], tb: &[P; 3]) -> bool {
    match (Plane::of(ta), Plane::of(tb)) {
        (Some(pa), Some(pb)) => triangles_intersect(ia, ta, &pa, ib, tb, &pb),
        _ => false,
    }
}

/// Do triangles `ta` (indices `ia`, plane `pa`) and `tb` (indices `ib`, plane `pb`) intersect anywhere other than
/// in the vertices and edge they share?
pub(crate) fn triangles_intersect(
    ia: [u32; 3],
    ta: &[P; 3],
    pa: &Plane,
    ib: [u32; 3],
    tb: &[P; 3],
    pb: &Plane,
) -> bool {
    // Shared vertices: position k in a -> position in b.
    let (shared, n_shared) = shared_vertices(ia, ib);
    match n_shared {
        0 => triangles_touch(ta, pa, tb, pb),
        1 => {
            let (ka, kb) = shared[0];
            let (b1, b2) = (ta[(ka + 1) % 3], ta[(ka + 2) % 3]);
            let (d1, d2) = (tb[(kb + 1) % 3], tb[(kb + 2) % 3]);
            segment_triangle(b1, b2, tb, pb) || segment_triangle(d1, d2, ta, pa)
        }
        2 => {
            let (ka0, _) = shared[0];
            let (ka1, _) = shared[1];
            let a = ta[ka0];
            let b = ta[ka1];
            let c = ta[3 - ka0 - ka1];
            let d = tb[3 - shared[0].1 - shared[1].1];
            // In-plane direction perpendicular to ab; c and d on the same side of ab means a fold if coplanar.
            let side_dir = cross(pa.unit, sub(b, a));
            let sc = dot(side_dir, sub(c, a));
            let sd = dot(side_dir, sub(d, a));
            if sc * sd <= 0.0 {
                // d on the other side of ab (or on the line): the two triangles only share the edge.
                return false;
            }
            let off_plane = dot(pa.unit, sub(d, a)).abs();
            let in_plane = sd.abs() / norm(side_dir);
            off_plane <= FOLD_SINE * in_plane
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_crossing_and_coplanar_pairs() {
        let a = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]];
        let far = [[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0]];
        let piercing = [[0.5, 0.5, -1.0], [0.5, 0.5, 1.0], [1.5, 1.5, 1.0]];
        let coplanar_overlap = [[0.5, 0.5, 0.0], [3.0, 0.5, 0.0], [0.5, 3.0, 0.0]];
        let coplanar_apart = [[3.0, 3.0, 0.0], [4.0, 3.0, 0.0], [3.0, 4.0, 0.0]];
        let ia = [0, 1, 2];
        let ib = [3, 4, 5];
        assert!(!triangles_intersect_points(ia, &a, ib, &far));
        assert!(triangles_intersect_points(ia, &a, ib, &piercing));
        assert!(triangles_intersect_points(ia, &a, ib, &coplanar_overlap));
        assert!(!triangles_intersect_points(ia, &a, ib, &coplanar_apart));
    }

    #[test]
    fn shared_edge_only_folds_intersect() {
        let a = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        // Flat neighbour across the edge 0-1: fine.
        let flat = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, -1.0, 0.0]];
        assert!(!triangles_intersect_points([0, 1, 2], &a, [1, 0, 3], &flat));
        // Bent neighbour: fine.
        let bent = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.3, 0.9]];
        assert!(!triangles_intersect_points([0, 1, 2], &a, [1, 0, 3], &bent));
        // Folded back onto a: intersects.
        let folded = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.3, 0.0]];
        assert!(triangles_intersect_points([0, 1, 2], &a, [1, 0, 3], &folded));
    }

    #[test]
    fn nearly_coplanar_triangles_apart_do_not_intersect() {
        // Two faces of a flat cap 0.8 mm apart, their corners moved by one f32 ulp (an STL exporter's noise): the
        // line through an edge of one, nearly in the plane of the other, passes through its corner far beyond the
        // edge's end; that must not count.
        let a = [
            [47.3945198059082, 139.0467071533203, 53.999996185302734],
            [47.39452362060547, 139.0466766357422, 55.499996185302734],
            [48.35155487060547, 139.0467071533203, 54.000003814697266],
        ];
        let b = [
            [48.3515510559082, 139.0466766357422, 55.499996185302734],
            [49.3085823059082, 139.0466766357422, 55.499996185302734],
            [49.3085823059082, 139.0467071533203, 53.999996185302734],
        ];
        assert!(!triangles_intersect_points([0, 1, 2], &a, [3, 4, 5], &b));
        assert!(!triangles_intersect_points([3, 4, 5], &b, [0, 1, 2], &a));
        // A segment ending on a triangle still touches it.
        let t = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]];
        let pl = Plane::of(&t).expect("non-degenerate");
        assert!(segment_triangle([0.5, 0.5, 0.0], [0.5, 0.5, 1.0], &t, &pl));
        assert!(!segment_triangle([3.0, 3.0, 0.0], [-1.0, -1.0, 1e-3], &t, &pl));
    }

    #[test]
    fn shared_vertex_cases() {
        let a = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        // Fan neighbour in the same plane, not overlapping.
        let fan = [[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]];
        assert!(!triangles_intersect_points([0, 1, 2], &a, [0, 3, 4], &fan));
        // Sticking up from the shared vertex without crossing.
        let up = [[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [0.0, -1.0, 1.0]];
        assert!(!triangles_intersect_points([0, 1, 2], &a, [0, 3, 4], &up));
        // Passing through a from the shared vertex.
        let through = [[0.0, 0.0, 0.0], [0.3, 0.3, 1.0], [0.3, 0.3, -1.0]];
        assert!(triangles_intersect_points([0, 1, 2], &a, [0, 3, 4], &through));
        // Coplanar overlapping wedge.
        let overlap = [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 2.0, 0.0]];
        assert!(triangles_intersect_points([0, 1, 2], &a, [0, 3, 4], &overlap));
        // Duplicate.
        assert!(triangles_intersect_points(
            [0, 1, 2],
            &a,
            [2, 1, 0],
            &[a[2], a[1], a[0]]
        ));
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::testing::proptest_config(3000))]
        #[test]
        fn certainly_apart_never_contradicts_the_exact_test(
            pool in proptest::collection::vec(
                prop_oneof![
                    // Points of a coarse lattice (coplanar and collinear configurations) and anywhere.
                    proptest::array::uniform3(0i8..3).prop_map(|c| c.map(f64::from)),
                    proptest::array::uniform3(-1.0f64..2.0),
                ],
                6,
            ),
            ia in proptest::array::uniform3(0u32..6),
            ib in proptest::array::uniform3(0u32..6),
        ) {
            let corners = |i: [u32; 3]| i.map(|k| pool[k as usize]);
            let (ta, tb) = (corners(ia), corners(ib));
            let distinct = |i: [u32; 3]| i[0] != i[1] && i[1] != i[2] && i[0] != i[2];
            if distinct(ia) && distinct(ib) {
                if let (Some(pa), Some(pb)) = (Plane::of(&ta), Plane::of(&tb)) {
                    let apart = certainly_apart(ia, &ta, &QuickPlane::of(&ta), ib, &tb, &QuickPlane::of(&tb));
                    prop_assert!(!(apart && triangles_intersect(ia, &ta, &pa, ib, &tb, &pb)));
                }
            }
        }
    }
}
