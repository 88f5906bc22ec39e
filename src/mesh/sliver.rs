//! Removal of zero-area slivers that a mesh boolean can leave where faces of its operands meet almost exactly.
//!
//! Why: the boolean engine returns closed, manifold meshes, but where a tool face passes within rounding distance of
//! an operand's edge it can emit a triangle of area ~1e-14 mm^2 (a "cap": one vertex on the opposite edge, or a
//! "needle": two vertices nearly coincident). Such a triangle has no defined normal, so the guide checks rightly
//! refuse it, although the solid is otherwise exact. Manifold (C++) cleans these up after every boolean; boolmesh
//! does not always, so we do it here, topologically and without moving any vertex by more than the needle length:
//! - a needle's short edge is collapsed (when the link condition holds, so the mesh stays manifold);
//! - a cap's long edge is flipped with the triangle across it (when the new edge does not exist yet).
//!
//! A cap is found by its height as well as its area: a vertex 1.5e-6 mm from the opposite edge of a 0.85 mm
//! triangle (area 6e-7 mm^2, found on a real mandible guide) is a fold waiting to happen, because rounding the
//! positions to `f32` for the STL moves vertices by up to 4e-6 mm and turned that triangle over, so the written file
//! self-intersected although the `f64` mesh passed its checks.
//!
//! The pass is deterministic (triangles in index order, one operation per round, adjacency rebuilt), and slivers it
//! cannot remove are left for the checks to report.

use std::collections::BTreeSet;

use super::{cross, norm, sub, Mesh};

/// Triangles with less area than this, mm^2, are slivers to remove; above the checks' degenerate threshold
/// (1e-12 mm^2) so near-degenerate neighbours go too, far below any real triangle of a guide (~1e-3 mm^2).
const SLIVER_AREA_MM2: f64 = 1e-9;
/// An edge shorter than this, mm, is a needle's edge and is collapsed (moves geometry by at most this much, 200 times
/// less than the slot check's tolerance). A triangle with such an edge is a sliver whatever its area: boolmesh leaves
/// clusters of vertices 2e-5 to 7e-5 mm apart where a tool face grazes the contact surface, and triangulates the
/// face polygon around them with long fans that fold over each other (the self-intersections of docs/PERFORMANCE.md);
/// merging the cluster leaves a polygon the fans cover once.
const NEEDLE_EDGE_MM: f64 = 1e-4;
/// A collapse may turn the faces around the merged vertex by at most this much, deg: less than the slot and channel
/// checks' angle tolerance (0.05 deg), so a tool's face keeps its plane.
const MAX_TURN_DEG: f64 = 0.01;
/// A triangle whose smallest height is less than this, mm, is a cap (one vertex almost on the opposite edge) and is
/// flipped away: 25 times the largest move of rounding a guide's positions to `f32` (4e-6 mm below 64 mm from the
/// origin), so no triangle left can turn over when the mesh is written.
const CAP_HEIGHT_MM: f64 = 1e-4;
/// Most operations tried; a boolean leaves a handful of slivers, this bounds the work on pathological input.
const MAX_ROUNDS: usize = 256;

/// `mesh` with its slivers removed where that keeps it manifold; unused vertices dropped, vertices numbered in
/// first-use order. A mesh without slivers is returned unchanged.
pub fn remove_slivers(mesh: Mesh) -> Mesh {
    let mut m = mesh;
    let mut changed = false;
    let mut skipped: BTreeSet<[u32; 3]> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let Some(t) = (0..m.triangles.len()).find(|&t| is_sliver(&m, t) && !skipped.contains(&m.triangles[t])) else {
            break;
        };
        if fix_one(&mut m, t) {
            changed = true;
        } else {
            skipped.insert(m.triangles[t]);
        }
    }
    if changed {
        m.select_triangles(|_| true)
    } else {
        m
    }
}

/// Edges up to this long, mm, are merged where rounding to `f32` made a mesh self-intersect: clusters of vertices
/// 2e-4 to 3e-4 mm apart on a crease (well-shaped triangles, so neither needles nor caps) are what the rounding
/// folds. Merging moves the surface by at most this much, 20 times less than the slot check's tolerance.
const ROUNDING_MERGE_EDGE_MM: f64 = 1e-3;
/// A merge made for the rounding may turn the faces around the merged vertex by at most this much, deg: the
/// triangles of a cluster are a few tenths of a micrometre across, so their turn moves no surface by more than the
/// merged edge, and the slot and channel checks measure the faces afterwards.
const ROUNDING_MERGE_TURN_DEG: f64 = 45.0;
/// Rounds and merges tried before the rounded mesh is handed to the checks as it is.
const ROUNDING_ATTEMPTS: usize = 4;

/// `mesh` as its files hold it: positions rounded to `f32`. Where the rounding makes triangles intersect (a cluster
/// of vertices a few tenths of a micrometre apart on a crease, which `f64` kept apart), the short edges of the
/// triangles involved are merged in the `f64` mesh and it is rounded again. What still intersects after
/// [`ROUNDING_ATTEMPTS`] is left for the checks to report: the result is never claimed valid here.
pub fn rounded_for_files(mesh: Mesh) -> Mesh {
    let mut m = mesh;
    for _ in 0..ROUNDING_ATTEMPTS {
        let mut rounded = m.clone();
        rounded.round_to_f32();
        let crossing = crossings_near_small_features(&m, &rounded);
        if crossing.is_empty() {
            return rounded;
        }
        let near: BTreeSet<u32> = crossing.iter().flatten().flat_map(|&t| m.triangles[t]).collect();
        let mut merged = false;
        let mut refused: BTreeSet<(u32, u32)> = BTreeSet::new();
        for _ in 0..MAX_ROUNDS {
            let short = m.triangles.iter().find_map(|t| {
                (0..3).map(|k| (t[k], t[(k + 1) % 3])).find(|&(a, b)| {
                    (near.contains(&a) || near.contains(&b))
                        && !refused.contains(&(a.min(b), a.max(b)))
                        && edge_len(&m, a, b) < ROUNDING_MERGE_EDGE_MM
                })
            });
            let Some((a, b)) = short else { break };
            if collapse_within(&mut m, a, b, ROUNDING_MERGE_TURN_DEG) {
                merged = true;
            } else {
                refused.insert((a.min(b), a.max(b)));
            }
        }
        if !merged {
            return rounded;
        }
        m = m.select_triangles(|_| true);
    }
    m.round_to_f32();
    m
}

/// The pairs of triangles of `rounded` (`m` rounded) that intersect near `m`'s small features (an edge or a height
/// under [`ROUNDING_MERGE_EDGE_MM`]): the places where moving vertices by an `f32` step can fold a mesh. Only the
/// two rings of triangles around them are tested, a few hundred of a guide's hundred thousand; the guide's checks
/// test the whole rounded mesh afterwards.
fn crossings_near_small_features(m: &Mesh, rounded: &Mesh) -> Vec<[usize; 2]> {
    let small = |t: usize| {
        let (edge, height) = shortest_edge_and_height(m, t);
        edge.min(height) < ROUNDING_MERGE_EDGE_MM
    };
    let mut marked = vec![false; m.positions.len()];
    let mut any = false;
    for t in (0..m.triangles.len()).filter(|&t| small(t)) {
        any = true;
        for v in m.triangles[t] {
            marked[v as usize] = true;
        }
    }
    if !any {
        return Vec::new();
    }
    // Two rings: the triangles touching a marked vertex mark theirs, then every triangle touching one is kept.
    for _ in 0..2 {
        let touching: Vec<usize> = (0..m.triangles.len())
            .filter(|&t| m.triangles[t].iter().any(|&v| marked[v as usize]))
            .collect();
        for t in touching {
            for v in m.triangles[t] {
                marked[v as usize] = true;
            }
        }
    }
    let kept: Vec<usize> = (0..m.triangles.len())
        .filter(|&t| m.triangles[t].iter().any(|&v| marked[v as usize]))
        .collect();
    let local = Mesh {
        positions: rounded.positions.clone(),
        triangles: kept.iter().map(|&t| rounded.triangles[t]).collect(),
    };
    super::check::self_intersections(&local)
        .iter()
        .map(|d| d.triangles.map(|t| kept[t as usize]))
        .collect()
}

fn area(m: &Mesh, t: usize) -> f64 {
    let [a, b, c] = m.triangles[t].map(|v| m.positions[v as usize]);
    0.5 * norm(cross(sub(b, a), sub(c, a)))
}

/// Triangle `t`'s shortest edge and smallest height (twice its area over its longest edge), mm.
fn shortest_edge_and_height(m: &Mesh, t: usize) -> (f64, f64) {
    let [a, b, c] = m.triangles[t];
    let lens = [edge_len(m, a, b), edge_len(m, b, c), edge_len(m, c, a)];
    let longest = lens[0].max(lens[1]).max(lens[2]);
    (lens[0].min(lens[1]).min(lens[2]), 2.0 * area(m, t) / longest)
}

fn is_sliver(m: &Mesh, t: usize) -> bool {
    let (edge, height) = shortest_edge_and_height(m, t);
    area(m, t) < SLIVER_AREA_MM2 || edge < NEEDLE_EDGE_MM || height < CAP_HEIGHT_MM
}

fn normal(m: &Mesh, t: [u32; 3]) -> [f64; 3] {
    let [a, b, c] = t.map(|v| m.positions[v as usize]);
    cross(sub(b, a), sub(c, a))
}

fn edge_len(m: &Mesh, a: u32, b: u32) -> f64 {
    norm(sub(m.positions[b as usize], m.positions[a as usize]))
}

/// Tries to remove sliver `t`; false if no topology-safe operation exists.
fn fix_one(m: &mut Mesh, t: usize) -> bool {
    let tri = m.triangles[t];
    // Edge k runs from tri[k] to tri[k+1]; the opposite vertex is tri[k+2].
    let lens: [f64; 3] = std::array::from_fn(|k| edge_len(m, tri[k], tri[(k + 1) % 3]));
    let shortest = (0..3).min_by(|&a, &b| lens[a].total_cmp(&lens[b])).unwrap_or(0);
    if lens[shortest] < NEEDLE_EDGE_MM {
        return collapse(m, tri[shortest], tri[(shortest + 1) % 3]);
    }
    let longest = (0..3).max_by(|&a, &b| lens[a].total_cmp(&lens[b])).unwrap_or(0);
    flip(m, t, longest)
}

/// The largest turn (radians) of a triangle around `v` when `v` moves onto `u`; `None` if one turns over (which would
/// trade this fold for another).
fn collapse_turn(m: &Mesh, u: u32, v: u32) -> Option<f64> {
    let mut worst = 0.0f64;
    for &t in m.triangles.iter().filter(|t| t.contains(&v) && !t.contains(&u)) {
        let after = t.map(|x| if x == v { u } else { x });
        let (n0, n1) = (normal(m, t), normal(m, after));
        let cos = (n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2]) / (norm(n0) * norm(n1));
        if cos.is_nan() || cos <= 0.0 {
            return None;
        }
        worst = worst.max(cos.min(1.0).acos());
    }
    Some(worst)
}

/// Collapses edge (a, b) of a closed manifold mesh into whichever end turns the faces around the other less, if the
/// link condition holds and no face turns by more than `MAX_TURN_DEG` (a face of a slot or channel keeps its plane).
fn collapse(m: &mut Mesh, a: u32, b: u32) -> bool {
    collapse_within(m, a, b, MAX_TURN_DEG)
}

/// [`collapse`] with a limit on the faces' turn of `max_turn_deg`.
fn collapse_within(m: &mut Mesh, a: u32, b: u32, max_turn_deg: f64) -> bool {
    let (u, v, turn) = match (collapse_turn(m, a, b), collapse_turn(m, b, a)) {
        (Some(x), Some(y)) if y < x => (b, a, y),
        (Some(x), _) => (a, b, x),
        (None, Some(y)) => (b, a, y),
        (None, None) => return false,
    };
    if turn > max_turn_deg.to_radians() {
        return false;
    }
    let ring = |x: u32| -> BTreeSet<u32> {
        m.triangles
            .iter()
            .filter(|t| t.contains(&x))
            .flat_map(|t| t.iter().copied())
            .filter(|&y| y != x)
            .collect()
    };
    let (ru, rv) = (ring(u), ring(v));
    let shared: Vec<u32> = ru.intersection(&rv).copied().collect();
    let opposite: BTreeSet<u32> = m
        .triangles
        .iter()
        .filter(|t| t.contains(&u) && t.contains(&v))
        .flat_map(|t| t.iter().copied())
        .filter(|&y| y != u && y != v)
        .collect();
    if opposite.len() != 2 || shared.len() != 2 || shared.iter().any(|s| !opposite.contains(s)) {
        return false;
    }
    m.triangles.retain(|t| !(t.contains(&u) && t.contains(&v)));
    for t in &mut m.triangles {
        for x in t.iter_mut() {
            if *x == v {
                *x = u;
            }
        }
    }
    true
}

/// Flips edge `k` of triangle `t` (from tri[k] to tri[k+1]) with the triangle across it.
fn flip(m: &mut Mesh, t: usize, k: usize) -> bool {
    let tri = m.triangles[t];
    let (a, b, c) = (tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]);
    // Linear scans, not an edge map: a pass over the triangles is cheaper than hashing every edge of a guide, and a
    // boolean's result needs a few hundred flips.
    let has_edge = |t: &[u32; 3], u: u32, v: u32| (0..3).any(|k| t[k] == u && t[(k + 1) % 3] == v);
    let Some(t2) = m.triangles.iter().position(|t| has_edge(t, b, a)) else {
        return false;
    };
    let Some(&d) = m.triangles[t2].iter().find(|&&x| x != a && x != b) else {
        return false;
    };
    if c == d || m.triangles.iter().any(|t| t.contains(&c) && t.contains(&d)) {
        return false;
    }
    let before = [m.triangles[t], m.triangles[t2]];
    m.triangles[t] = [a, d, c];
    m.triangles[t2] = [d, b, c];
    // Only keep the flip if both new triangles are proper (d may lie on the line too).
    if is_sliver(m, t) || is_sliver(m, t2) {
        m.triangles[t] = before[0];
        m.triangles[t2] = before[1];
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::check::MeshReport;

    /// A closed tetrahedron-like solid: a square pyramid whose base is split into triangles with an extra vertex
    /// placed exactly on a base edge, giving a zero-area cap.
    fn pyramid_with_cap() -> Mesh {
        let positions = vec![
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
            [2.0, 2.0, 0.0],
            [0.0, 2.0, 0.0],
            [1.0, 1.0, 2.0],
            [1.0, 1.0, 0.0], // on the diagonal 0-2
        ];
        // Base (seen from below, outward normal -z): triangles 0-2-1 and 0-3-2 with vertex 5 splitting the diagonal,
        // plus the degenerate cap 0-5-2 / 2-5-0 arrangement made consistent.
        let triangles = vec![
            [0, 5, 1],
            [5, 2, 1],
            [0, 3, 5],
            [5, 3, 2],
            [0, 1, 4],
            [1, 2, 4],
            [2, 3, 4],
            [3, 0, 4],
        ];
        Mesh { positions, triangles }
    }

    #[test]
    fn a_mesh_without_slivers_is_unchanged() {
        let m = pyramid_with_cap();
        assert_eq!(remove_slivers(m.clone()), m);
    }

    #[test]
    fn a_cap_is_flipped_away_and_the_mesh_stays_closed() {
        let mut m = pyramid_with_cap();
        // Move vertex 5 onto the edge 0-1 and make triangle [0, 5, 1] a cap.
        m.positions[5] = [1.0, 0.0, 0.0];
        assert!(is_sliver(&m, 0));
        let fixed = remove_slivers(m.clone());
        assert!((0..fixed.triangles.len()).all(|t| !is_sliver(&fixed, t)), "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        assert!((fixed.signed_volume_mm3() - m.signed_volume_mm3()).abs() < 1e-12);
    }

    #[test]
    fn a_cap_with_area_is_flipped_before_f32_rounding_can_turn_it_over() {
        let mut m = pyramid_with_cap();
        // Vertex 5 1.5e-6 mm inside the base edge 0-1 (the real case: area 7.5e-7 mm^2, far above the area
        // threshold); a move of that size, as rounding to f32 makes, would put it outside the solid.
        m.positions[5] = [1.0, 1.5e-6, 0.0];
        assert!(area(&m, 0) > 1e2 * SLIVER_AREA_MM2);
        assert!(is_sliver(&m, 0));
        let fixed = remove_slivers(m.clone());
        assert!((0..fixed.triangles.len()).all(|t| !is_sliver(&fixed, t)), "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        // Moved out through the edge, the vertex no longer folds the base.
        let mut moved = fixed.clone();
        let v = fixed
            .positions
            .iter()
            .position(|p| *p == [1.0, 1.5e-6, 0.0])
            .expect("the vertex is kept");
        moved.positions[v][1] = -1.5e-6;
        assert!(MeshReport::new(&moved).is_valid());
    }

    #[test]
    fn a_needle_is_collapsed_and_the_mesh_stays_closed() {
        let mut m = pyramid_with_cap();
        // Vertex 5 a hair away from vertex 1: triangles around it become needles.
        m.positions[5] = [2.0 - 1e-10, 1e-10, 0.0];
        let fixed = remove_slivers(m.clone());
        assert!((0..fixed.triangles.len()).all(|t| !is_sliver(&fixed, t)), "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        assert!(fixed.positions.len() < m.positions.len());
    }

    #[test]
    fn a_vertex_a_hair_from_its_neighbour_is_merged_although_its_triangles_have_area() {
        let mut m = pyramid_with_cap();
        // 5e-5 mm from vertex 1 in the base plane: the triangles around it have areas of ~1e-5 mm^2, far above the
        // area threshold, but the cluster is what boolmesh folds its fans over.
        m.positions[5] = [2.0 - 5e-5, 5e-5, 0.0];
        assert!((0..m.triangles.len()).all(|t| area(&m, t) > 1e3 * SLIVER_AREA_MM2));
        let fixed = remove_slivers(m.clone());
        assert_eq!(fixed.positions.len(), 5, "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        // The base stays in its plane whichever end was kept.
        assert!(fixed.positions.iter().filter(|p| p[2] < 1.0).all(|p| p[2] == 0.0));
    }
}
